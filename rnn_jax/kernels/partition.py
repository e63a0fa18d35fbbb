"""Per-device kernel calls inside a sharded jit: a data-parallel partitioning rule for FFI calls.

XLA cannot split a custom call by itself: in a jit whose batch is sharded over devices it gathers the
whole batch onto every device and runs all of it there (correct, but no device saves any work).
`data_parallel` wraps a function of FFI calls in `jax.experimental.custom_partitioning` with the rule a
recurrent layer obeys: every batched argument and result is split along its batch dimension over the
mesh axes that split the first argument's batch dimension, everything else (the weights) is replicated,
each device calls the kernel on its rows, and the results named in ``summed`` (weight gradients) are
summed over those axes (``psum``). When the first argument is not split along its batch dimension, or on
one device, the function runs as it is.

`custom_partitioning` has no vmap rule, so the result also carries one (`sequential_vmap`, a
`jax.custom_batching.custom_vmap`; the cuDNN kernel uses it too):
under vmap the calls run one mapped slice after another (``lax.map``), batched arguments sliced and the
others shared; nested vmaps apply the rule again.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
from jax.custom_batching import custom_vmap
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec


def _resolve(dims: Sequence, ranks: Sequence[int]) -> list:
    """Returns each array's batch dimension, None for a rank-1 placeholder (``[0]``) or a replicated array."""
    return [d if d is not None and r >= 2 and r > d else None for d, r in zip(dims, ranks)]


def _sharding(mesh, rank: int, dim, axes) -> NamedSharding:
    spec = [None] * rank
    if dim is not None and axes is not None:
        spec[dim] = axes
    return NamedSharding(mesh, PartitionSpec(*spec))


def _rule(in_dims, out_dims):
    """Returns the Shardy rule callable: factor 'n' at each batch dimension, a factor of its own elsewhere."""
    def rule(*args):
        *_, mesh, operand_types, result_types = args
        del mesh
        count = iter(range(10 ** 6))

        def factors(types, dims):
            ranks = [len(t.shape) for t in types]
            return ", ".join(" ".join("n" if i == d else f"f{next(count)}" for i in range(rank))
                             for rank, d in zip(ranks, _resolve(dims, ranks)))

        return f"{factors(operand_types, in_dims)} -> {factors(result_types, out_dims)}"
    return rule


def data_parallel(fn: Callable, num_static: int, in_dims: Sequence, out_dims: Sequence,
                  summed: Sequence[int] = ()) -> Callable:
    """Returns `fn` (``fn(*static, *arrays) -> tuple of arrays``) partitioned along the batch.

    Args:
      fn: the function of kernel calls; its first `num_static` arguments are static (hashable).
      num_static: how many leading arguments are static.
      in_dims, out_dims: each array argument's and result's batch dimension (None: replicated; an array
        of rank 1 has none, so ``[0]`` placeholders stay replicated).
      summed: indices of results that are per-device partial sums (weight gradients), summed over the
        batch's mesh axes.
    """
    wrapped = custom_partitioning(fn, static_argnums=tuple(range(num_static)))

    def partition(*args):
        *static, mesh, arg_shapes, result_shape = args
        spec = arg_shapes[0].sharding.spec
        axes = spec[1] if len(spec) > 1 else None
        ins = _resolve(in_dims, [len(s.shape) for s in arg_shapes])
        outs = _resolve(out_dims, [len(s.shape) for s in result_shape])
        arg_shardings = tuple(_sharding(mesh, len(s.shape), d, axes) for s, d in zip(arg_shapes, ins))
        out_shardings = tuple(_sharding(mesh, len(s.shape), d, axes) for s, d in zip(result_shape, outs))

        def lower_fn(*arrays):
            results = fn(*static, *arrays)
            if axes is None:
                return results
            return tuple(jax.lax.psum(r, axes) if i in summed else r for i, r in enumerate(results))

        return mesh, lower_fn, out_shardings, arg_shardings

    wrapped.def_partition(partition, sharding_rule=_rule(in_dims, out_dims))
    for_static = functools.lru_cache(maxsize=None)(lambda *static: sequential_vmap(wrapped, static))
    return lambda *args: for_static(*args[:num_static])(*args[num_static:])


def sequential_vmap(fn: Callable, static: tuple = ()) -> Callable:
    """Returns ``arrays -> fn(*static, *arrays)`` whose vmap runs the mapped slices in turn (``lax.map``)."""
    @custom_vmap
    def call(*arrays):
        return fn(*static, *arrays)

    @call.def_vmap
    def rule(axis_size, in_batched, *arrays):
        del axis_size
        batched = [a for a, b in zip(arrays, in_batched) if b]

        def one(slices):
            it = iter(slices)
            return call(*(next(it) if b else a for a, b in zip(arrays, in_batched)))

        outs = jax.lax.map(one, batched)
        return outs, jax.tree.map(lambda _: True, outs)

    return call
