"""FLOP counts of the recurrent layers, and a measured matmul roofline to compare them with.

The count is of matmul FLOPs only (a multiply-add is 2 FLOPs); gate nonlinearities, masks and the loss
are left out, so it is the work any implementation must do however it fuses or hoists. Per layer and
direction, for N tokens (B*T, or sum(lengths) with variable lengths: padded steps are not useful work)::

    forward = 2 * N * (I_l + H_rec) * G * H   [+ 2 * N * H * P for a projected LSTM]

with G the gates (LSTM 4, GRU 3, Elman 1), H the hidden size, H_rec the size of the recurrent input (P =
proj_size for a projected LSTM, else H) and I_l the layer's input size (I for the first layer, D * H_rec
after it, D = 2 if bidirectional). A training step counts 3x forward: the backward pass does two matmuls
(gradients wrt the inputs and wrt the weights) for each forward one.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
TRAIN_FACTOR = 3


def recurrent_flops(cell: str, input_size: int, hidden_size: int, tokens: int, *, layers: int = 1,
                    bidirectional: bool = False, mode: str = "forward", proj_size: int = 0) -> int:
    """Returns the matmul FLOPs of one forward pass (or training step) over `tokens` tokens."""
    if cell not in GATES:
        raise ValueError(f"cell must be one of {tuple(GATES)}, got {cell!r}")
    if mode not in ("forward", "train"):
        raise ValueError(f"mode must be 'forward' or 'train', got {mode!r}")
    D = 2 if bidirectional else 1
    G, H = GATES[cell], hidden_size
    h_rec = proj_size or H
    total = 0
    for layer in range(layers):
        i_l = input_size if layer == 0 else D * h_rec
        per_direction = 2 * tokens * (i_l + h_rec) * G * H + (2 * tokens * H * proj_size if proj_size else 0)
        total += D * per_direction
    return total * (TRAIN_FACTOR if mode == "train" else 1)


def matmul_roofline(n: int = 2048, dtype: str = "float32", repeats: int = 5) -> dict:
    """Returns the best GFLOP/s of a jitted ``[n, n] @ [n, n]`` matmul on JAX's default device.

    The best (not the median) of `repeats` timed calls after one warm-up: the roofline is what the
    machine can reach, not what it reaches on average.
    """
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - start)
    return {"n": n, "dtype": dtype, "best_s": min(times), "gflops_per_s": 2 * n**3 / min(times) / 1e9}
