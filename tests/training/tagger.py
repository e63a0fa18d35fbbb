"""The task the training tests train: a tiny GRU tagger on deterministic synthetic batches.

B=4, T=5, I=3, H=8, 2 classes, input dropout (so the step's key matters). ``batch_at(position)`` makes the
data position explicit, as a real loader's is. The optimiser and the jitted step are cached per
configuration, so every test file in the process reuses one trace.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rnn_jax
from rnn_jax import training as tr

B, T, I, H, C = 4, 5, 3, 8, 2
CELL = rnn_jax.gru(H)
DROPOUT = 0.25
DATA_START = 1000  # the data position of step 0: never equal to the step, so resume must restore it


def init_params(key):
    k_cell, k_out = jax.random.split(key)
    return {"cell": CELL.init(k_cell, I), "out": {"w": 0.3 * jax.random.normal(k_out, (H, C)), "b": jnp.zeros(C)}}


def loss_fn(params, batch, key):
    """Masked cross-entropy sum over valid steps, their count, and the correct-prediction sum."""
    xs = batch["x"]  # [B, T, I]
    if key is not None:  # training: input dropout, so the step's key matters
        keep = jax.random.bernoulli(key, 1.0 - DROPOUT, xs.shape)
        xs = jnp.where(keep, xs / (1.0 - DROPOUT), 0.0)
    _, hs = rnn_jax.unroll(CELL, params["cell"], xs, batch["lengths"])  # [B, T, H]
    logits = hs @ params["out"]["w"] + params["out"]["b"][None, None, :]  # [B, T, C]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])  # [B, T]
    mask = rnn_jax.lengths_to_mask(batch["lengths"], T).astype(jnp.float32)  # [B, T]
    correct = (jnp.argmax(logits, -1) == batch["y"]).astype(jnp.float32)
    return jnp.sum(ce * mask), jnp.sum(mask), {"correct_sum": jnp.sum(correct * mask)}


def batch_at(position: int, batch_size: int = B) -> dict:
    """The batch at a data position: x [B, T, I], lengths [B] in [0, T], y [B, T] (sign of a running sum)."""
    rng = np.random.default_rng(position)
    x = rng.normal(size=(batch_size, T, I)).astype(np.float32)
    lengths = rng.integers(0, T + 1, size=batch_size).astype(np.int32)
    y = (np.cumsum(x[..., 0], axis=1) > 0).astype(np.int32)
    return {"x": x, "lengths": lengths, "y": y}


@functools.lru_cache(maxsize=None)
def optimizer(total_steps: int):
    # one transformation object per configuration: it is static in the state, so reusing it reuses traces
    return tr.make_optimizer("adam", 3e-2, schedule="linear_warmup_cosine", warmup_steps=2,
                             total_steps=total_steps, clip_norm=1.0)


@functools.lru_cache(maxsize=None)
def jitted_train_step():
    return jax.jit(tr.make_train_step(loss_fn), donate_argnums=0)


jitted_init_params = jax.jit(init_params)  # eager init would compile op by op


def fresh_state(total_steps: int, seed: int = 0) -> tr.TrainState:
    return tr.create_train_state(jitted_init_params(jax.random.key(seed)), optimizer(total_steps),
                                 jax.random.key(seed + 1))
