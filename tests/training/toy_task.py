"""A task small enough to follow by hand, for tests of the training loop.

One parameter ``w`` (starting at 0), batches of ``x = 1`` (or, with ``vary=True``, an ``x`` that depends on
the data position), targets ``y``; the loss is the masked squared error of ``w * x + carry_weight * c``,
where the carried state ``c [B]`` (when ``carry_weight`` is set) adds each batch's ``x``. With SGD at
learning rate ``lr`` and ``vary=False`` the trajectory is ``w_t = y (1 - (1 - 2 lr)^t)``.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import optax

from rnn_jax import training


class ToyTask(training.Task):
    """Fits ``w`` to ``train_y``; evaluation sets with their own targets."""

    def __init__(self, *, total_steps=10, batch_size=4, lr=0.1, train_y=1.0, eval_targets=(("dev", 0.5),),
                 eval_batches=((3, 2),), carry_weight=None, vary=False, nan_at=None, crash_at=None,
                 stream_eval=False):
        self.total_steps, self.batch_size, self.vary = total_steps, batch_size, vary
        self.train_y, self.carry_weight, self.nan_at, self.crash_at = train_y, carry_weight, nan_at, crash_at
        self.tx = optax.sgd(lr)
        sizes = [rows for rows, repeat in eval_batches for _ in range(repeat)]  # (rows, how many batches)
        self.eval_sets = {name: training.EvalSet(lambda y=y: self._eval(y, sizes), carry=stream_eval)
                          for name, y in eval_targets}
        self.dev_set = eval_targets[0][0]

    def x_at(self, position: int) -> float:
        return 1.0 + 0.25 * (position % 3) if self.vary else 1.0

    def _eval(self, y, sizes):
        for i, n in enumerate(sizes):
            yield {"x": np.full((n,), 1.0 + 0.5 * i, np.float32), "y": np.full((n,), y, np.float32),
                   "mask": np.ones((n,), bool)}

    def train_batches(self, position, process_index, process_count):
        for p in itertools.count(position):
            if p == self.crash_at:
                raise KeyboardInterrupt(f"crash before batch {p}")  # what a kill would do, deterministically
            x = np.full((self.batch_size,), self.x_at(p), np.float32)
            if p == self.nan_at:
                x[0] = np.nan
            batch = {"x": x, "y": np.full((self.batch_size,), self.train_y, np.float32),
                     "mask": np.ones((self.batch_size,), bool)}
            yield training.sharding.process_rows(batch, process_index, process_count)

    def init(self, key):
        del key
        return {"w": jnp.zeros((), jnp.float32)}

    def initial_carry(self, batch_size):
        return None if self.carry_weight is None else {"c": np.zeros((batch_size,), np.float32)}

    def loss(self, params, batch, carry, key):
        pred = params["w"] * batch["x"]
        if carry is not None:
            pred = pred + self.carry_weight * carry["c"]
            carry = {"c": carry["c"] + batch["x"]}
        err = jnp.where(batch["mask"], jnp.square(pred - batch["y"]), 0.0)
        count = jnp.sum(batch["mask"].astype(jnp.float32))
        return jnp.sum(err), count, {"outputs": {"pred": pred}}, carry

    def eval_metrics(self, name, metrics, outputs):
        return {"rows": sum(len(out["pred"]) for _, out in outputs)}
