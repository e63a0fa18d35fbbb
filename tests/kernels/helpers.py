"""What the kernels' tests share: a loss that weighs every output and final state apart, and unroll's cases."""

import jax
import jax.numpy as jnp

from rnn_jax import unroll
from tests.conftest import assert_close


def spec_loss(spec, lengths):
    """Returns ``loss(params, x, state)``: `spec`'s outputs and final states, each element weighted apart.

    The outputs are weighted by ``cos`` of their flat index and the k-th final-state leaf by ``k + 1.5``, so
    a gradient test sees every output position and every final state on its own.
    """
    def loss(params, x, state):
        out, final = spec.apply(params, x, lengths, state)
        w = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
        return jnp.sum(out * w) + sum(jnp.sum(f * (k + 1.5)) for k, f in enumerate(jax.tree.leaves(final)))
    return loss


def assert_unroll_matches_the_scan(cell, kernel: str, lengths, input_size: int, shape: tuple):
    """Asserts `rnn_jax.unroll` by `kernel` equals the scan for `cell` over inputs of ``shape [B, T]``.

    Cases: `lengths` with a shifted initial carry and reverse=True; reverse alone; lengths alone; one
    unbatched sequence ``[T, I]`` reversed within length 3.
    """
    params = cell.init(jax.random.key(1), input_size)
    xs = jax.random.normal(jax.random.key(2), shape + (input_size,))
    carry = jax.tree.map(lambda z: z + 0.3, cell.initial_carry(shape[:1]))
    for kw in (dict(lengths=lengths, carry=carry, reverse=True), dict(reverse=True), dict(lengths=lengths)):
        assert_close(unroll(cell, params, xs, kernel=kernel, **kw), unroll(cell, params, xs, kernel="scan", **kw))
    one = unroll(cell, params, xs[1], lengths=3, reverse=True, kernel=kernel)
    assert_close(one, unroll(cell, params, xs[1], lengths=3, reverse=True, kernel="scan"))
