"""Tests of rnn_jax.training.sharding: a sharded batch on one device gives the same step, and data
parallelism on 2 forced host devices (in a subprocess, as the device count is fixed at start-up)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnn_jax import training as tr
from tests.training.conftest import REPO, assert_trees_equal
from tests.training.tagger import batch_at, fresh_state, jitted_train_step


def test_shard_batch_single_device_gives_the_same_step():
    mesh = tr.make_mesh()
    batch = tr.shard_batch(batch_at(0), mesh)
    assert batch["x"].sharding == tr.batch_sharding(mesh)
    ref_state, ref = jitted_train_step()(fresh_state(8), batch_at(0))
    new, m = jitted_train_step()(tr.replicate(fresh_state(8), mesh), batch)
    assert_trees_equal(new.params, ref_state.params)
    assert float(m["loss_sum"]) == float(ref["loss_sum"])


_TWO_DEVICE_SCRIPT = r"""
import json, jax, numpy as np, chex
from rnn_jax import training as tr
from tests.training.tagger import batch_at, fresh_state, loss_fn
assert jax.device_count() == 2, jax.devices()
mesh = tr.make_mesh()
step_fn = jax.jit(chex.assert_max_traces(tr.make_train_step(loss_fn), n=1), donate_argnums=0)
state = tr.replicate(fresh_state(8), mesh)
ref = fresh_state(8)
ref_step = jax.jit(tr.make_train_step(loss_fn))  # inputs on the default device only
out = {}
for pos in range(2):
    batch = tr.shard_batch(batch_at(pos), mesh)
    out["x_shards"] = sorted(s.data.shape[0] for s in batch["x"].addressable_shards)
    state, m = step_fn(state, batch)
    ref, m_ref = ref_step(ref, batch_at(pos))   # unsharded, one device
diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
         zip(jax.tree.leaves(state.params), jax.tree.leaves(ref.params))]
out["max_param_diff"] = max(diffs)
out["loss"] = [float(m["loss_sum"]), float(m_ref["loss_sum"])]
out["params_replicated"] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params))
try:
    tr.shard_batch(batch_at(0, batch_size=3), mesh)
except ValueError as e:
    out["error"] = str(e)
print("RESULT " + json.dumps(out))
"""


def test_data_parallel_on_two_host_devices():
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["x_shards"] == [2, 2]  # batch 4 split over 2 devices
    assert out["params_replicated"]
    assert out["max_param_diff"] < 1e-6  # sharded sums differ from unsharded ones by rounding only
    assert out["loss"][0] == pytest.approx(out["loss"][1], rel=1e-6)
    assert "leading (batch) axis 3 is not divisible by the 2 devices" in out["error"]
    assert "batch leaf ['lengths'] has shape (3,)" in out["error"]  # leaves in key order


def test_process_rows_split_a_global_batch_in_process_order():
    batch = {"x": np.arange(12).reshape(6, 2), "mask": np.ones(6, bool), "scale": np.float32(2.0)}
    parts = [tr.sharding.process_rows(batch, i, 3) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate([p["x"] for p in parts]), batch["x"])
    assert [p["x"].shape for p in parts] == [(2, 2)] * 3 and parts[1]["scale"] == 2.0
    with pytest.raises(ValueError, match=r"global batch \(over 4 processes\) size 6 .* not divisible by the 4"):
        tr.sharding.process_rows(batch, 0, 4)


def test_pad_batch_repeats_the_last_row_with_the_mask_off():
    batch = {"x": np.arange(6.0).reshape(3, 2), "mask": np.array([[1, 1], [1, 0], [1, 1]], bool)}
    padded, n = tr.pad_batch(batch, 4)
    assert n == 3 and padded["x"].shape == (4, 2)
    np.testing.assert_array_equal(padded["x"][3], batch["x"][2])
    np.testing.assert_array_equal(padded["mask"], [[1, 1], [1, 0], [1, 1], [0, 0]])
    same, n = tr.pad_batch(batch, 3)
    assert same is batch and n == 3
    with pytest.raises(ValueError, match="'mask' entry"):
        tr.pad_batch({"x": batch["x"]}, 4)


def test_global_batch_checks_the_local_batch_against_the_devices():
    with pytest.raises(ValueError, match="disagree on the leading"):
        tr.sharding.check_divisible({"a": np.zeros(4), "b": np.zeros(3)}, 1)
    out = tr.global_batch({"a": np.arange(4)})
    np.testing.assert_array_equal(np.asarray(out["a"]), np.arange(4))


def test_epoch_rows_starts_at_any_position_and_gives_each_process_its_rows():
    def epoch(e):  # 3 global batches of 4 rows per epoch, numbered by epoch and batch
        return ({"x": np.arange(4) + 100 * e + 10 * b} for b in range(3))

    from rnn_jax.training.sharding import epoch_rows
    stream = epoch_rows(epoch, 3, 4, 1, 2)  # from global batch 4 = epoch 1, batch 1; process 1 of 2
    got = [next(stream)["x"].tolist() for _ in range(3)]
    assert got == [[112, 113], [122, 123], [202, 203]]
