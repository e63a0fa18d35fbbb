"""Benchmarks rnn_jax against Flax linen, Flax nnx, PyTorch and JAX's cuDNN LSTM in one process run.

Commands (runtimes on the 2-core dev machine)::

    python -m experiments.benchmark --out_dir=/tmp/bench         # the issue's grid (7 configs x 5 peers)
    python -m experiments.benchmark --long --out_dir=/tmp/long   # LSTM 8x10000x128x128, checkpoint off/on: ~25 s
    python -m experiments.benchmark --quick --out_dir=/tmp/bq    # the grid's shapes at 4x8x8x16: ~30 s
    RNN_JAX_DATA=../shared/data python -m experiments.benchmark --batching --out_dir=/tmp/batching
        # the four batching modes training the POS tagger on EWT (`bench_lib.batching`)

Other flags: ``--cells=lstm,gru,rnn --sizes=BxTxIxH,... --layers=N --bidirectional`` build a custom grid
(their product; setting any implies ``--grid=custom``); ``--lengths=fixed|variable``,
``--dtype=float32|bfloat16``, ``--mode=train|forward``, ``--repeats=5``, ``--warmup=2``, ``--peers``
(default all five: rnn_jax, flax_linen, flax_nnx, torch, jax_experimental_rnn; rnn_jax variants such as
``rnn_jax:hoist_inputs=false,unroll=2`` override any spec field, see `bench_lib.peers`),
``--torch_threads`` (0: all CPUs), ``--torch_omp_wait=inherit``, ``--long_size=BxTxIxH`` and ``--roofline_n=2048``.

The default grid (`bench_lib.workload.DEFAULT_GRID`, one `Case` per row holding cell, size, layers and
direction) is LSTM at 32x100x128x256, 16x200x64x128, 64x50x256x512 and 128x35x650x650 (B x T x I x H);
GRU and Elman RNN at 32x100x128x256; a 2-layer bidirectional LSTM at 32x100x128x256. Each row times one
step (``--mode=train``: forward, mean-square loss over real tokens, gradients, SGD update;
``--mode=forward``: the forward pass) of every peer on the same float32 inputs. ``--lengths=variable``
gives each batch lengths drawn once (seed 1) uniform in [T/4, T] with at least one full-length sequence:
JAX peers get them as masks (``lengths`` / ``seq_lengths``), PyTorch packs (``pack_padded_sequence``,
``enforce_sorted=False``). bfloat16 means bfloat16 compute with float32 parameters: rnn_jax spec
``dtype``, Flax ``dtype``, PyTorch ``torch.autocast`` (on CPU it covers LSTM only; the row's note says
when GRU/RNN stayed float32). ``--quick`` runs the grid's shapes at 4x8x8x16, 2 repeats, 1 warm-up.

Timing: JAX steps are compiled ahead of time (``compile s``: trace, lower, compile; for PyTorch, its
first call), run ``--warmup`` rounds, then ``--repeats`` timed rounds interleaved round-robin across the
peers of the row (A, B, C, A, B, C, ...) so machine drift hits all alike. It prints a machine line (CPU,
cores, versions, backend, torch device and threads), the run line with the roofline (best GFLOP/s of a
jitted ``roofline_n``^3 matmul in the run's dtype), then a row per configuration and peer, e.g. (--quick)::

  config         peer                  compile s  median ms   min-max ms   tokens/s  GFLOP/s  pct roof  x torch  x best flax
  lstm 4x8x8x16  rnn_jax                    0.93       3.07    2.60-3.55     10,421      0.1       0.1     0.46         0.13
  lstm 4x8x8x16  jax_experimental_rnn  unavailable: AttributeError: ... (needs cuDNN; JAX backend is cpu)

tokens/s counts real tokens (sum of lengths) per median step; GFLOP/s is the recurrent layers' matmul
FLOP count (`bench_lib.flops`: forward 2*N*(I_l+H_rec)*G*H per layer and direction, training 3x) over
the median step, pct roof its percentage of the roofline; the ratios are tokens/s over torch's and over the
faster Flax peer's, same configuration (>1: faster). A peer that cannot run here (jax_experimental_rnn
off GPU, or on GRU/RNN; torch where not installed) is a row ``unavailable: <reason>``, never skipped.

``--long`` instead trains the rnn_jax LSTM (and any rnn_jax variants in ``--peers``) at ``--long_size``
with ``checkpoint=False`` and ``True``, each case in its own subprocess, and prints per case the step
time, XLA's temp memory (``compiled.memory_analysis()``), the RSS before the step, its peak during the
step and the rise, the process's ``ru_maxrss`` and (GPU) the device's peak (see `bench_lib.long_seq`).

``--out_dir`` receives results.json (machine, config, roofline, rows), results.md (the machine line,
the run line and the table) and results.png (tokens/s per configuration and peer, log scale; in long
mode, memory and step time per case).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Sequence

from absl import app, flags

from experiments.bench_lib import flops as flops_lib
from experiments.bench_lib import long_seq, peers as peers_lib, timing
from experiments.bench_lib.tables import TextTable, markdown_table
from experiments.bench_lib.workload import (CELLS, DEFAULT_GRID, DTYPES, LENGTHS, MODES, QUICK_SIZE, Case, Size,
                                            make_workload, parse_size)
from rnn_jax import kernels

FLAGS = flags.FLAGS
CUSTOM_GRID_FLAGS = ("cells", "sizes", "layers", "bidirectional")

_GRID = flags.DEFINE_enum("grid", "default", ["default", "custom"], "default: the issue's grid; custom: the "
                          "product of --cells, --sizes, --layers, --bidirectional (implied by setting any).")
_CELLS = flags.DEFINE_list("cells", ["lstm"], f"Custom grid: cells, from {CELLS}.")
_SIZES = flags.DEFINE_list("sizes", ["32x100x128x256"], "Custom grid: sizes as BxTxIxH.")
_LAYERS = flags.DEFINE_integer("layers", 1, "Custom grid: stacked layers.")
_BIDIRECTIONAL = flags.DEFINE_bool("bidirectional", False, "Custom grid: bidirectional layers.")
_LENGTHS = flags.DEFINE_enum("lengths", "fixed", LENGTHS, "fixed: full-length batches; variable: lengths "
                             "uniform in [T/4, T] (masks for JAX peers, packing for PyTorch).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", DTYPES, "Compute dtype (parameters stay float32).")
_MODE = flags.DEFINE_enum("mode", "train", MODES, "train: one SGD step; forward: the forward pass only.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed rounds per configuration.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed rounds after compilation.")
_PEERS = flags.DEFINE_string("peers", ",".join(peers_lib.DEFAULT_PEERS), "Comma-separated peers; rnn_jax "
                             "variants as rnn_jax:field=value,field=value (e.g. rnn_jax:hoist_inputs=false,unroll=2).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Directory for results.json, results.md and results.png.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny sizes, 2 repeats, 1 warm-up (tests, demos).")
_LONG = flags.DEFINE_bool("long", False, "Run the long-sequence study instead of the grid.")
_BATCHING = flags.DEFINE_bool("batching", False, "Run the batching study (the four ways to batch sentences, "
                              "training the POS tagger on UD EWT) instead of the grid.")
_LONG_SIZE = flags.DEFINE_string("long_size", str(long_seq.LONG_SIZE), "Long study: BxTxIxH.")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 0, "PyTorch intra-op threads (0: all CPUs); XLA:CPU "
                                      "uses all CPUs.")
_TORCH_OMP_WAIT = flags.DEFINE_enum("torch_omp_wait", "inherit", peers_lib.OMP_WAIT_POLICIES, "OMP_WAIT_POLICY "
                                    "for PyTorch's OpenMP threads: inherit (the environment's), passive (they "
                                    "sleep after every parallel region: slows torch 1.5-4x) or active.")
_KEEP_HOST_MEMORY = flags.DEFINE_bool("keep_host_memory", False, "glibc malloc keeps freed memory for every "
                                      "peer (rnn_jax.training.keep_host_memory, as the experiments do); off: "
                                      "the allocator a user's process has. On, RSS figures stay at their peak.")
_ROOFLINE_N = flags.DEFINE_integer("roofline_n", 2048, "Side of the square matmul that measures the roofline.")


@dataclasses.dataclass(frozen=True)
class Config:
    cases: tuple[Case, ...] = DEFAULT_GRID
    mode: str = "train"
    dtype: str = "float32"
    lengths: str = "fixed"
    repeats: int = 5
    warmup: int = 2
    peers: tuple[str, ...] = peers_lib.DEFAULT_PEERS
    roofline_n: int = 2048
    long: bool = False
    long_size: Size = long_seq.LONG_SIZE
    torch_threads: int = 0
    torch_omp_wait: str = "inherit"
    keep_host_memory: bool = False


def config_from_flags() -> Config:
    """Returns the `Config` the command-line flags describe."""
    custom = [n for n in CUSTOM_GRID_FLAGS if FLAGS[n].present]
    grid = "custom" if custom and not FLAGS["grid"].present else _GRID.value
    if grid == "default" and custom:
        raise app.UsageError(f"--{', --'.join(custom)} describe a custom grid: drop them or pass --grid=custom")
    if grid == "default":
        cases = DEFAULT_GRID
    else:
        cases = tuple(Case(c.strip().lower(), parse_size(s), _LAYERS.value, _BIDIRECTIONAL.value)
                      for c in _CELLS.value for s in _SIZES.value)
    quick = _QUICK.value
    if quick:  # the grid's shapes (cell, layers, direction) at a tiny size
        cases = tuple(dict.fromkeys(c._replace(size=QUICK_SIZE) for c in cases))
    return Config(cases=cases, mode=_MODE.value, dtype=_DTYPE.value, lengths=_LENGTHS.value,
                  repeats=2 if quick else _REPEATS.value, warmup=1 if quick else _WARMUP.value,
                  peers=tuple(peers_lib.split_peer_list(_PEERS.value)),
                  roofline_n=256 if quick else _ROOFLINE_N.value, long=_LONG.value,
                  long_size=long_seq.QUICK_LONG_SIZE if quick else parse_size(_LONG_SIZE.value),
                  torch_threads=_TORCH_THREADS.value, torch_omp_wait=_TORCH_OMP_WAIT.value,
                  keep_host_memory=_KEEP_HOST_MEMORY.value)


# --------------------------------------------------------------------------- running


def check_config(config: Config) -> None:
    """Raises ValueError naming the first unknown cell, peer or variant field of `config`."""
    for cell in ["lstm"] if config.long else [case.cell for case in config.cases]:
        if cell not in CELLS:
            raise ValueError(f"cells must be among {CELLS}, got {cell!r}")
        for peer in config.peers:
            peers_lib.check_peer(peer, cell)
    if len(set(config.peers)) != len(config.peers):
        raise ValueError(f"peers must be distinct, got {config.peers}")
    if config.long and not any(peers_lib.parse_peer(p)[0] == "rnn_jax" for p in config.peers):
        raise ValueError(f"the long study runs rnn_jax peers (and variants), got peers {config.peers}")


def add_ratios(rows: list[dict]) -> list[dict]:
    """Returns `rows` with ``vs_torch`` and ``vs_best_flax``: tokens/s over the reference peer's, same config."""
    for row in rows:
        group = [r for r in rows if r["config"] == row["config"] and r["tokens_per_s"] is not None]
        torch_tps = [r["tokens_per_s"] for r in group if r["peer"] == "torch"]
        flax_tps = [r["tokens_per_s"] for r in group if r["peer"] in peers_lib.FLAX_PEERS]
        tps = row["tokens_per_s"]
        row["vs_torch"] = tps / torch_tps[0] if tps is not None and torch_tps else None
        row["vs_best_flax"] = tps / max(flax_tps) if tps is not None and flax_tps else None
    return rows


def _case_flops(case: Case, peer: str, tokens: int, mode: str) -> int:
    proj_size = peers_lib.parse_peer(peer)[1].get("proj_size") or 0  # a projected rnn_jax variant
    return flops_lib.recurrent_flops(case.cell, case.size.input, case.size.hidden, tokens, layers=case.layers,
                                     bidirectional=case.bidirectional, mode=mode, proj_size=proj_size)


def run_case(case: Case, config: Config, roofline_gflops: float | None) -> list[dict]:
    """Returns one row per peer for `case`: compiled together, timed round-robin, ratios within the case."""
    w = make_workload(case, config.mode, config.dtype, config.lengths)
    prepared, rows = {}, []
    for peer in config.peers:
        row = {"config": case.label, "cell": case.cell, "size": str(case.size), "layers": case.layers,
               "bidirectional": case.bidirectional, "mode": config.mode, "dtype": config.dtype,
               "lengths": config.lengths, "peer": peer, "status": "ok", "note": "", "compile_s": None,
               "tokens": w.tokens, "tokens_per_s": None}
        try:
            prepared[peer] = peers_lib.prepare(peer, w)
            row.update(compile_s=prepared[peer].compile_s, note=prepared[peer].note)
        except peers_lib.Unavailable as e:
            row["status"] = f"unavailable: {e}"
        rows.append(row)
    times = timing.time_interleaved({p: prep.call for p, prep in prepared.items()}, config.warmup, config.repeats)
    for row in rows:
        if row["peer"] in times:
            row.update(timing.summarize(times[row["peer"]]))
            gflop = _case_flops(case, row["peer"], w.tokens, config.mode) / 1e9
            row.update(tokens_per_s=w.tokens / row["median_s"], gflop=gflop,
                       gflops_per_s=gflop / row["median_s"])
            row["roofline_fraction"] = row["gflops_per_s"] / roofline_gflops if roofline_gflops else None
    return add_ratios(rows)


def run(config: Config, roofline: dict | None = None,
        on_case: Callable[[list[dict]], None] = lambda rows: None) -> tuple[dict, list[dict]]:
    """Returns ``(roofline, rows)``: the matmul roofline (measured unless given) and one row per (case, peer)."""
    check_config(config)
    roofline = roofline or flops_lib.matmul_roofline(config.roofline_n, config.dtype)
    rows = []
    for case in config.cases:
        case_rows = run_case(case, config, roofline["gflops_per_s"])
        on_case(case_rows)
        rows.extend(case_rows)
    return roofline, rows


def run_long(config: Config) -> list[dict]:
    """Returns the long-study rows: each rnn_jax peer's training step without and with checkpointing.

    Each case runs in its own subprocess (its memory is its own); peers other than rnn_jax are left out.
    """
    return [long_seq.run_in_subprocess(config.long_size, checkpoint, repeats=1 if config.repeats <= 2 else 2,
                                       dtype=config.dtype, peer=peer)
            for peer in config.peers if peers_lib.parse_peer(peer)[0] == "rnn_jax" for checkpoint in (False, True)]


# --------------------------------------------------------------------------- reporting

GRID_COLUMNS = ("config", "peer", "compile s", "median ms", "min-max ms", "tokens/s", "GFLOP/s", "pct roof",
                "x torch", "x best flax")
LONG_COLUMNS = ("peer", "checkpoint", "step s", "tokens/s", "XLA temp MB", "RSS before MB", "step peak RSS MB",
                "step rise MB", "process peak MB", "device peak MB", "compile s")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def grid_cells(row: dict) -> list[str]:
    """Returns the printed cells of one grid row, in `GRID_COLUMNS` order."""
    if row["status"] != "ok":
        return [row["config"], row["peer"], row["status"]]
    return [row["config"], row["peer"], _fmt(row["compile_s"], ".2f"), _fmt(1e3 * row["median_s"], ".2f"),
            f"{1e3 * row['min_s']:.2f}-{1e3 * row['max_s']:.2f}", _fmt(row["tokens_per_s"], ",.0f"),
            _fmt(row["gflops_per_s"], ".1f"), _fmt(100 * row["roofline_fraction"] if row["roofline_fraction"]
                                                   is not None else None, ".1f"),
            _fmt(row["vs_torch"], ".2f"), _fmt(row["vs_best_flax"], ".2f")]


def long_cells(row: dict) -> list[str]:
    """Returns the printed cells of one long-study row, in `LONG_COLUMNS` order."""
    if row["status"] != "ok":
        return [row["peer"], str(row["checkpoint"]), row["status"]]
    return [row["peer"], str(row["checkpoint"]), f"{row['step_s']:.3f}", f"{row['tokens_per_s']:,.0f}",
            _fmt(row["temp_mb"], ".0f"), _fmt(row["rss_before_mb"], ".0f"), _fmt(row["step_peak_rss_mb"], ".0f"),
            _fmt(row["step_rise_mb"], ".0f"), f"{row['process_peak_rss_mb']:.0f}", _fmt(row["device_peak_mb"], ".0f"),
            f"{row['compile_s']:.2f}"]


def grid_table(config: Config) -> TextTable:
    width = max([len(c.label) for c in config.cases] + [6])
    return TextTable(GRID_COLUMNS, [width, max(len(p) for p in config.peers), 9, 9, 11, 9, 7, 8, 7, 11])


def long_table(config: Config) -> TextTable:
    return TextTable(LONG_COLUMNS, [max(len(p) for p in config.peers), 10] + [0] * (len(LONG_COLUMNS) - 2))


def config_line(config: Config, roofline: dict | None) -> str:
    what = (f"long study: LSTM {config.long_size}, train, {config.dtype}" if config.long else
            f"mode={config.mode} dtype={config.dtype} lengths={config.lengths} repeats={config.repeats} "
            f"warmup={config.warmup} (interleaved)")
    if config.keep_host_memory:
        what += " keep_host_memory"
    if roofline:
        what += (f" | roofline: {roofline['gflops_per_s']:.1f} GFLOP/s ({roofline['n']}^3 {roofline['dtype']} "
                 f"matmul, best of 5)")
    return what


def write_png(path: str, rows: list[dict], long: bool) -> None:
    """Writes a bar chart: tokens/s per configuration and peer (log scale), or long-study memory and time."""
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top

    if long:
        ok = [r for r in rows if r["status"] == "ok"]
        names = [f"{r['peer']}\ncheckpoint={r['checkpoint']}" for r in ok]
        fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
        pos = np.arange(len(ok))
        for k, (key, label) in enumerate((("temp_mb", "XLA temp"), ("step_rise_mb", "RSS rise in step"))):
            ax_m.bar(pos + 0.4 * k, [r[key] or 0 for r in ok], 0.4, label=label)
        ax_m.set_xticks(pos + 0.2, names)
        ax_m.set_ylabel("MB")
        ax_m.legend()
        ax_t.bar(pos, [r["step_s"] for r in ok], 0.5)
        ax_t.set_xticks(pos, names)
        ax_t.set_ylabel("train step, s")
        fig.suptitle(f"LSTM {rows[0]['size']} (BxTxIxH), one training step")
    else:
        configs = list(dict.fromkeys(r["config"] for r in rows))
        peers = list(dict.fromkeys(r["peer"] for r in rows))
        fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(configs) * max(1, len(peers) / 4)), 5))
        width = 0.8 / len(peers)
        for k, peer in enumerate(peers):
            for i, config in enumerate(configs):
                row = next(r for r in rows if r["config"] == config and r["peer"] == peer)
                x = i + (k - (len(peers) - 1) / 2) * width
                if row["tokens_per_s"] is None:  # x in data, y in axes coordinates: clear of the log scale
                    ax.text(x, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7,
                            transform=ax.get_xaxis_transform())
                else:
                    ax.bar(x, row["tokens_per_s"], width, color=f"C{k}")
            ax.bar(0, 0, 0, color=f"C{k}", label=peer)  # legend entry, even for a peer unavailable everywhere
        ax.set_yscale("log")
        ax.set_xticks(range(len(configs)), configs, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("tokens/s (log)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(f"{rows[0]['mode']} step, {rows[0]['dtype']}, {rows[0]['lengths']} lengths")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_outputs(out_dir: str, machine: dict, config: Config, roofline: dict | None, rows: list[dict]) -> None:
    """Writes results.json, results.md and results.png to `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    config_dict = dict(dataclasses.asdict(config), long_size=str(config.long_size),
                       cases=[dict(c._asdict(), size=str(c.size)) for c in config.cases])
    declined = [{"kernel": k, "reason": r, "times": n} for (k, r), n in kernels.declined().items()]
    payload = {"machine": machine, "config": config_dict, "roofline": roofline, "rows": rows,
               "kernels_declined_by_auto": declined}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=2, default=str)
    columns, cells = (LONG_COLUMNS, long_cells) if config.long else (GRID_COLUMNS, grid_cells)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(f"{timing.machine_line(machine)}\n\n{config_line(config, roofline)}\n\n"
                f"{markdown_table(columns, [cells(r) for r in rows])}\n")
    write_png(os.path.join(out_dir, "results.png"), rows, config.long)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _BATCHING.value:
        from experiments.bench_lib import batching  # pylint: disable=g-import-not-at-top
        print(timing.machine_line(timing.machine_info()), flush=True)
        batching.study(_OUT_DIR.value, quick=_QUICK.value)
        return
    config = config_from_flags()
    check_config(config)
    if config.keep_host_memory:
        from rnn_jax.training import keep_host_memory  # pylint: disable=g-import-not-at-top
        keep_host_memory()
    peers_lib.set_torch_threads(config.torch_threads)
    peers_lib.set_torch_omp_wait(config.torch_omp_wait)
    machine = timing.machine_info()
    print(timing.machine_line(machine), flush=True)
    if config.long:
        roofline, table = None, long_table(config)
        print(config_line(config, None), flush=True)
        print(table.header(), flush=True)
        rows = run_long(config)
        print("\n".join(table.line(long_cells(r)) for r in rows))
    else:
        roofline, table = flops_lib.matmul_roofline(config.roofline_n, config.dtype), grid_table(config)
        print(config_line(config, roofline), flush=True)
        print(table.header(), flush=True)
        _, rows = run(config, roofline, on_case=lambda case_rows: print(
            "\n".join(table.line(grid_cells(r)) for r in case_rows), flush=True))
    if _OUT_DIR.value:
        write_outputs(_OUT_DIR.value, machine, config, roofline, rows)
        print(f"wrote results.json, results.md, results.png to {_OUT_DIR.value}")


if __name__ == "__main__":
    app.run(main)
