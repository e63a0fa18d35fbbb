"""Tests of rnn_jax.training.checkpoint: exact save and restore, keep-K plus best, argument errors, exact
resume of the tiny tagger's training, unreadable checkpoints set aside, another run's refused (the kill -9
chain over a whole program is in tests/experiments/test_crash_safety.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnn_jax import training as tr
from tests.training.conftest import assert_trees_equal
from tests.training.loop import run_training
from tests.training.tagger import DATA_START, batch_at, fresh_state, jitted_train_step


def test_save_and_restore_are_exact(tmp_path):
    state = fresh_state(8)
    step_fn = jitted_train_step()
    for pos in range(3):
        state, _ = step_fn(state, batch_at(pos))
    with tr.Checkpointer(tmp_path, save_every=10) as ckpt:
        assert ckpt.restore_latest(fresh_state(8)) is None
        assert ckpt.save(3, state, extra={"data_position": 1003, "vocab_path": "vocab.json"}, force=True)
        with pytest.raises(ValueError, match=r"save\(step=10\) got a state at step 3"):
            ckpt.save(10, state)
    template = fresh_state(8, seed=5)  # other params and key: restore must replace them all
    restored, extra, items = tr.Checkpointer(tmp_path, save_every=10).restore_latest(template)
    assert items is None  # none saved, none asked for
    assert extra == {"data_position": 1003, "vocab_path": "vocab.json"}
    assert_trees_equal(restored.params, state.params)
    assert_trees_equal(restored.opt_state, state.opt_state)  # Adam moments and counts, bit for bit
    assert restored.step.dtype == jnp.int32 and int(restored.step) == 3
    assert jnp.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(restored.key), jax.random.key_data(state.key))
    assert restored.tx is template.tx


def _state_at(step: int, value: float) -> tr.TrainState:
    params = {"w": jnp.full((2,), value)}
    tx = optax.sgd(0.1)
    return tr.create_train_state(params, tx, jax.random.key(0)).replace(step=jnp.asarray(step, jnp.int32))


@pytest.mark.parametrize("best_mode, kept, best", [("min", [2, 5, 6], 2), ("max", [5, 6], 6)])
def test_keep_last_k_plus_best(tmp_path, best_mode, kept, best):
    valid = {1: 5.0, 2: 2.0, 3: 4.0, 4: None, 5: 3.0, 6: 7.0}  # step 4 saved without a validation loss
    with tr.Checkpointer(tmp_path, save_every=1, keep=2, best_metric="valid_loss", best_mode=best_mode,
                         async_save=False) as ckpt:
        for step, v in valid.items():
            metrics = None if v is None else {"valid_loss": v, "train_loss": 9.0}
            assert ckpt.save(step, _state_at(step, float(step)), metrics=metrics)
        assert not ckpt.save(6, _state_at(6, 6.0), force=True)  # that step exists: no second save
        assert ckpt.all_steps() == kept and ckpt.best_step == best
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == kept
    reopened = tr.Checkpointer(tmp_path, save_every=1, keep=2, best_metric="valid_loss", best_mode=best_mode)
    assert reopened.all_steps() == kept and reopened.best_step == best and reopened.latest_step == 6
    state, _, _ = reopened.restore(_state_at(0, 0.0), best)
    np.testing.assert_array_equal(state.params["w"], [best, best])
    reopened.close()


def test_keep_last_k_without_best_and_save_every(tmp_path):
    with tr.Checkpointer(tmp_path, save_every=2, keep=2, async_save=False) as ckpt:
        saved = [s for s in range(1, 10) if ckpt.save(s, _state_at(s, 0.0), metrics={"valid_loss": 1.0 / s})]
        assert saved == [2, 4, 6, 8]
        assert ckpt.save(9, _state_at(9, 0.0), force=True)  # the final step, off the grid
        assert ckpt.all_steps() == [8, 9] and ckpt.best_step is None


@pytest.mark.parametrize("kwargs, match", [(dict(save_every=0), "save_every must be an integer >= 1"),
                                           (dict(save_every=1, keep=0), "keep must be an integer >= 1"),
                                           (dict(save_every=1, best_mode="lowest"), "best_mode must be")])
def test_checkpointer_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tr.Checkpointer(tmp_path, **kwargs)


def test_resume_continues_the_same_curve(tmp_path):
    total = 8
    ref_state, ref_losses = run_training(tmp_path / "ref", total, save_every=4, print_fn=lambda s: None)
    # a run that dies at step 6, two steps after its checkpoint at 4; its objects are simply dropped
    run_training(tmp_path / "run", total, save_every=4, stop_after=6, print_fn=lambda s: None)
    lines = []
    state, losses = run_training(tmp_path / "run", total, save_every=4, print_fn=lines.append)
    assert lines[0] == f"start 4 {DATA_START + 4}"  # step and data position restored
    assert sorted(losses) == [5, 6, 7, 8]
    assert losses == {s: ref_losses[s] for s in losses}  # the same curve, exactly
    assert_trees_equal(state.params, ref_state.params)
    assert_trees_equal(state.opt_state, ref_state.opt_state)


def _three_checkpoints(workdir):
    state, step_fn = fresh_state(8), jitted_train_step()
    with tr.Checkpointer(workdir, save_every=1, keep=3) as ckpt:
        for pos in range(3):
            state, _ = step_fn(state, batch_at(pos))
            ckpt.save(pos + 1, state)
    (workdir / "notes.txt").write_text("a file of the user's")
    return state


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _truncate_arrays(step_dir):
    for f in (step_dir / "state" / "d").iterdir():
        with open(f, "r+b") as handle:
            handle.truncate(7)


def _garble_metadata(step_dir):
    (step_dir / "state" / "_METADATA").write_text("{not json")


@pytest.mark.parametrize("damage", [_truncate_arrays, _garble_metadata])
def test_an_unreadable_newest_checkpoint_is_set_aside_and_the_previous_one_restored(tmp_path, damage):
    _three_checkpoints(tmp_path)
    damage(tmp_path / "checkpoints" / "3")
    before = [p for p in _listing(tmp_path) if not p.startswith("checkpoints/3")]
    ckpt = tr.Checkpointer(tmp_path, save_every=1, keep=3)
    restored = ckpt.restore_latest(fresh_state(8))
    assert int(restored.state.step) == 2
    (step, why, moved), = ckpt.set_aside
    assert step == 3 and ("metadata" in why or "OUT_OF_RANGE" in why or "Error" in why), why
    moved = tmp_path / "checkpoints.unreadable" / os.path.basename(moved)
    assert moved.name.startswith("3-") and (moved / "state").is_dir()
    after = [p for p in _listing(tmp_path) if not p.startswith("checkpoints.unreadable")]
    assert after == before  # nothing else in the workdir was deleted or changed
    assert ckpt.all_steps() == [1, 2]
    ckpt.close()


def test_a_checkpoint_of_another_run_is_an_error_naming_the_arrays(tmp_path):
    _three_checkpoints(tmp_path)
    state = fresh_state(8)  # a model with 3 classes instead of 2
    other = state.replace(params={**state.params, "out": {"w": jnp.zeros((8, 3)), "b": jnp.zeros(3)}})
    with pytest.raises(ValueError, match=r"checkpoint 3 in .* was written by another run: its 'state' arrays "
                                         r"differ from this run's \(params/out/b: saved float32\[2\], this run "
                                         r"float32\[3\]; params/out/w: saved float32\[8, 2\], this run float32\[8, 3\]\)"):
        tr.Checkpointer(tmp_path, save_every=1).restore_latest(other)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2", "3"]  # none set aside
