"""A resumable training loop over the tiny tagger, as an experiment's is, and the leaves it is judged by.

`tests.training.test_checkpoint` runs it in process.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from rnn_jax import training as tr
from tests.training.tagger import DATA_START, batch_at, fresh_state, jitted_train_step


def run_training(workdir, total_steps: int, save_every: int, *, stop_after: int | None = None,
                 sleep: float = 0.0, print_fn=print):
    """The training loop of an experiment in miniature: resume, train, checkpoint with the data position.

    Returns (state, {step: loss_sum}) for the steps this call ran. With `stop_after` it returns after that
    step without closing anything (the objects are then dropped, as a crash would); pending writes finish.
    """
    ckpt = tr.Checkpointer(workdir, save_every=save_every, keep=2)
    restored = ckpt.restore_latest(fresh_state(total_steps))
    state, extra = restored[:2] if restored else (fresh_state(total_steps), {"data_position": DATA_START})
    step, position = int(state.step), extra["data_position"]
    print_fn(f"start {step} {position}")
    train_step = jitted_train_step()
    losses = {}
    while step < total_steps:
        state, metrics = train_step(state, batch_at(position))
        step, position = step + 1, position + 1
        losses[step] = float(metrics["loss_sum"])
        if ckpt.save(step, state, extra={"data_position": position}, force=step == total_steps):
            print_fn(f"saved {step}")
        if step == stop_after:
            ckpt.wait()
            return state, losses
        time.sleep(sleep)
    ckpt.close()
    return state, losses


def leaves(tree):
    """The leaves of a pytree as numpy arrays, in tree order."""
    return [np.asarray(x) for x in jax.tree.leaves(tree)]
