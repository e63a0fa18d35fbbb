"""Data parallelism: a 1-D mesh of all devices, batches split on their leading axis, state replicated.

With the batch sharded and the state replicated, the jitted `train_step` runs unchanged: jit sees
global arrays, XLA partitions the computation and inserts the all-reduce for the batch sums and the
gradients. Single process (every device local); on one device everything is a no-op placement.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator, Sequence

import jax
from jax.experimental import multihost_utils
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnn_jax.training.state import is_typed_key

BATCH_AXIS = "batch"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Returns a 1-D `Mesh` with axis ``'batch'`` over `devices` (default: all of ``jax.devices()``)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_mesh needs at least one device")
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Returns the sharding that splits an array's leading (batch) axis over the mesh."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """Returns the sharding that places a full copy of an array on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(batch, mesh: Mesh | None = None):
    """Returns `batch` placed on the mesh, every leaf split on its leading axis (scalars replicated).

    Args:
      batch: a pytree of host or device arrays, each ``[batch, ...]`` with the same batch size.
      mesh: from `make_mesh` (default: a mesh of all devices).

    Raises:
      ValueError: naming the leaf, if its leading axis is not divisible by the number of devices.
    """
    mesh = make_mesh() if mesh is None else mesh
    n = mesh.size
    split, whole = batch_sharding(mesh), replicated_sharding(mesh)

    def place(path, x):
        shape = np.shape(x)
        if not shape:
            return jax.device_put(x, whole)
        if shape[0] % n:
            raise ValueError(f"batch leaf {jax.tree_util.keystr(path) or '<root>'} has shape {shape}: its "
                             f"leading (batch) axis {shape[0]} is not divisible by the {n} devices; use a "
                             f"batch size that is a multiple of {n}")
        return jax.device_put(x, split)

    return jax.tree_util.tree_map_with_path(place, batch)


def check_divisible(batch, n: int, what: str = "batch") -> int:
    """Returns the leading (batch) size of every leaf of `batch` after checking it divides by `n` devices.

    Raises:
      ValueError: naming the leaf, when leaves disagree on the batch size or it is not a multiple of `n`.
    """
    sizes = {}
    for path, x in jax.tree_util.tree_leaves_with_path(batch):
        if np.ndim(x):
            sizes[jax.tree_util.keystr(path) or "<root>"] = np.shape(x)[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{what} leaves disagree on the leading (batch) axis: {sizes}")
    size = next(iter(sizes.values()), 0)
    if size % n:
        raise ValueError(f"{what} size {size} (leaves {sorted(sizes)}) is not divisible by the {n} devices: use a "
                         f"multiple of {n}")
    return size


def global_batch(local_batch, mesh: Mesh | None = None):
    """Returns one global array per leaf, split on the batch axis, from this process's part of the batch.

    Each process passes its own rows (``[local_batch, ...]``, e.g. read by `jax.process_index()`); the global
    batch is their concatenation in process order. On one process this is `shard_batch`.

    Raises:
      ValueError: if the local batch does not divide by this process's devices.
    """
    mesh = make_mesh() if mesh is None else mesh
    check_divisible(local_batch, len(mesh.local_devices), "local batch")
    split = batch_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(split, np.asarray(x)), local_batch)


def process_rows(batch, process_index: int, process_count: int):
    """Returns this process's rows of a global batch: the `process_index`-th of `process_count` equal parts.

    The data contract of the training loop: each process reads only its own rows of every global batch,
    and `global_batch` joins them in process order.

    Raises:
      ValueError: if the batch size does not divide by `process_count`.
    """
    size = check_divisible(batch, process_count, f"global batch (over {process_count} processes)")
    part = size // process_count
    rows = slice(process_index * part, (process_index + 1) * part)
    return jax.tree.map(lambda x: x[rows] if np.ndim(x) else x, batch)


def epoch_rows(epoch_batches: Callable[[int], Iterable], steps_per_epoch: int, position: int, process_index: int,
               process_count: int) -> Iterator:
    """Yields this process's rows of global batches `position`, `position` + 1, ... of an epoch-based stream.

    ``epoch_batches(epoch)`` gives epoch `epoch`'s global batches (the same ones on every process: a
    seeded shuffle), `steps_per_epoch` of them; batch `position` is batch ``position % steps_per_epoch``
    of epoch ``position // steps_per_epoch``, so a resumed run reads exactly what it would have read.
    The `Task.train_batches` of a task with epochs.
    """
    epoch, offset = divmod(position, steps_per_epoch)
    for epoch in itertools.count(epoch):
        for batch in itertools.islice(epoch_batches(epoch), offset, None):
            yield process_rows(batch, process_index, process_count)
        offset = 0


def pad_batch(batch, multiple: int, mask_key: str = "mask"):
    """Returns ``(padded, n)``: `batch` grown on its leading axis to a multiple of `multiple`, and its size n.

    Padding rows repeat the last real row (so every function of them stays finite) with
    ``batch[mask_key]`` set to zero there, so masked sums never see them. Used by evaluation, whose
    last (or only, for one stream) batch may be smaller than the device count.

    Args:
      batch: a dict of arrays ``[n, ...]`` holding `mask_key` (``[n]`` or ``[n, T]``; bool or numeric).
      multiple: the device count (>= 1).
    """
    if mask_key not in batch:
        raise ValueError(f"batch must hold a {mask_key!r} entry marking its real rows, got keys {sorted(batch)}")
    n = int(np.shape(batch[mask_key])[0])
    extra = -n % multiple
    if not extra:
        return batch, n
    padded = {k: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[-1:], extra, axis=0)])
              for k, v in batch.items()}
    padded[mask_key][n:] = 0
    return padded, n


def wait_for_all(name: str) -> None:
    """Blocks until every process reaches the barrier `name` (e.g. after process 0 wrote or moved files); a
    no-op in a single-process run."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def replicate(tree, mesh: Mesh | None = None):
    """Returns `tree` (e.g. a `TrainState`) with every leaf copied to all devices of the mesh.

    With several processes every process must pass the same values (the state built from one seed): each
    places its copy on its own devices and together they form one replicated global array per leaf.
    """
    mesh = make_mesh() if mesh is None else mesh
    whole = replicated_sharding(mesh)
    if whole.is_fully_addressable:
        return jax.device_put(tree, whole)

    def place(x):
        if is_typed_key(x):  # typed keys travel as their key data
            return jax.random.wrap_key_data(place(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(host.shape, whole, lambda index: host[index])

    return jax.tree.map(place, tree)
