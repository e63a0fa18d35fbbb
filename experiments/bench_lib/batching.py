"""The lecture's four batching answers timed on the real tagging task: training throughput in sentences/s.

Each mode (`rnn_jax.data.tagging.MODES`) trains the default POS tagger (`experiments/configs/pos_tagging.py`)
on the same sample of UD English EWT training sentences, laid out its way: one sentence per step at its
own length, batches padded to their longest, length buckets, and buckets with a loss written for one
sentence and batched by ``jax.vmap``. A pass is one training step per batch of the sample (each pass
starts from the same state). The first pass compiles every shape the mode needs (``compile s``, a
trace-lower-compile per distinct batch shape); then `repeats` passes are timed (`timing.time_interleaved`
on the one mode: each timed pass follows an untimed one). Modes run one after another (see `run`), so
machine drift between them is not cancelled: run it on an idle machine.
"""

from __future__ import annotations

import time
from typing import Sequence

import jax
import jax.numpy as jnp

from experiments.bench_lib import timing
from rnn_jax.data import tagging
from rnn_jax.training.state import create_train_state
from rnn_jax.training.step import make_carried_train_step

COLUMNS = ("mode", "batches", "shapes", "compile s", "median s", "min-max s", "sentences/s", "tokens/s",
           "padding %")


def _mode_pass(task, state, mode: str, sample, batch_size: int, buckets):
    """Returns ``(run_pass, batches)``: a function running one training step per batch of `sample`."""
    def loss(params, batch, carry, key):
        loss_sum, count, aux = task.model.loss(params, batch, dropout_key=key, vmap=mode == "vmap",
                                               deterministic=key is None)
        return loss_sum, count, {"accuracy_sum": aux["correct"]}, carry

    step = jax.jit(make_carried_train_step(loss))
    batches = [{k: jnp.asarray(v) for k, v in b.items()}
               for b in tagging.tagging_batches(sample, mode, batch_size=batch_size, buckets=buckets, shuffle=True,
                                                seed=0)]

    def run_pass():
        metrics = None
        for batch in batches:
            metrics = step(state, batch, None)[1]
        jax.block_until_ready(metrics)

    return run_pass, batches


def run(task, modes: Sequence[str] = tagging.MODES, *, sentences: int = 256, repeats: int = 3) -> list[dict]:
    """Returns one row per mode for the first `sentences` training sentences of `task` (a `TaggingTask`).

    Modes are timed one after another, each then dropping its compiled steps (``jax.clear_caches``): XLA:CPU
    maps about 800 memory regions per compiled train step of this model, and one-by-one needs one step per
    distinct sentence length, so all four modes' steps together pass Linux's default ``vm.max_map_count``
    (65,530) and compilation fails with "Cannot allocate memory".
    """
    config = task.config
    sample = task.train[:sentences]
    state = create_train_state(task.init(jax.random.key(0)), task.tx, jax.random.key(1))
    rows = []
    for mode in modes:
        run_pass, batches = _mode_pass(task, state, mode, sample, config.batch_size, config.buckets)
        start = time.perf_counter()
        run_pass()  # compiles every shape
        first = time.perf_counter() - start
        times = timing.time_interleaved({mode: run_pass}, warmup=0, repeats=repeats)[mode]
        tokens = sum(int(b["mask"].sum()) for b in batches)
        row = {"mode": mode, "batches": len(batches), "shapes": len({b["words"].shape for b in batches}),
               "first_pass_s": first, "tokens": tokens, "sentences": len(sample),
               "padding": 1 - tokens / sum(int(b["mask"].size) for b in batches), **timing.summarize(times)}
        row.update(compile_s=max(first - row["median_s"], 0.0), sentences_per_s=len(sample) / row["median_s"],
                   tokens_per_s=tokens / row["median_s"])
        rows.append(row)
        print(" ".join(cells(row)), flush=True)
        del run_pass, batches
        jax.clear_caches()
    return rows


def cells(row: dict) -> list[str]:
    """Returns the printed cells of one row, in `COLUMNS` order."""
    return [row["mode"], str(row["batches"]), str(row["shapes"]), f"{row['compile_s']:.1f}",
            f"{row['median_s']:.2f}", f"{row['min_s']:.2f}-{row['max_s']:.2f}", f"{row['sentences_per_s']:,.1f}",
            f"{row['tokens_per_s']:,.0f}", f"{100 * row['padding']:.1f}"]


def study(out_dir: str | None, *, quick: bool = False, data_dir: str | None = None) -> list[dict]:
    """Runs the study on EWT 2.16 with the default tagger config, prints the table, writes results.md/json.

    ``quick``: 32 sentences, a 16-unit model, one timed round (tests, demos).
    """
    import json
    import os
    import tempfile

    from experiments.bench_lib.tables import TextTable, markdown_table
    from experiments.configs import pos_tagging as configs
    from experiments.pos_tagging import TaggingTask

    config = configs.get_config("smoke" if quick else "")
    config.data_dir = data_dir
    sentences, repeats = (32, 1) if quick else (256, 3)
    with tempfile.TemporaryDirectory() as tmp:
        task = TaggingTask(config, tmp)
    print(f"batching study: UD EWT {config.ud_version} train, first {sentences} sentences, batch "
          f"{config.batch_size}, buckets {tuple(config.buckets)}, {repeats} timed passes per mode", flush=True)
    rows = run(task, sentences=sentences, repeats=repeats)
    table = TextTable(COLUMNS, [10] + [0] * (len(COLUMNS) - 1))
    print("\n".join([table.header()] + [table.line(cells(r)) for r in rows]), flush=True)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump({"config": config.to_dict(), "rows": rows}, f, indent=2, default=str)
        with open(os.path.join(out_dir, "results.md"), "w") as f:
            f.write(markdown_table(COLUMNS, [cells(r) for r in rows]) + "\n")
    return rows
