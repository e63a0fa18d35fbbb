"""Data parallelism: a 1-D mesh of all devices, batches split on their leading axis, state replicated.

With the batch sharded and the state replicated, the jitted `train_step` runs unchanged: jit sees
global arrays, XLA partitions the computation and inserts the all-reduce for the batch sums and the
gradients. Single process (every device local); on one device everything is a no-op placement.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

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


def replicate(tree, mesh: Mesh | None = None):
    """Returns `tree` (e.g. a `TrainState`) with every leaf copied to all devices of the mesh."""
    mesh = make_mesh() if mesh is None else mesh
    return jax.device_put(tree, replicated_sharding(mesh))
