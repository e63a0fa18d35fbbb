"""Gradient accumulation against the whole batch's step: the tiny tagger on 4x a batch, masked counts uneven."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import training as tr
from rnn_jax.training.accumulation import join_micro_batches, split_micro_batches
from tests.training.tagger import batch_at, fresh_state, loss_fn


def deterministic_loss(params, batch, key):
    del key  # no dropout: the accumulated step then computes the same function as the one-batch step
    return loss_fn(params, batch, None)


def big_batch():
    batch = batch_at(3, batch_size=16)
    batch["lengths"][:4] = 0  # micro-batch 0 (rows 0, 4, 8, 12) holds fewer real steps than the others
    batch["lengths"][[0, 4]] = 1
    return batch


def test_split_and_join_are_a_strided_partition_and_its_inverse():
    x = np.arange(12).reshape(6, 2)
    parts = split_micro_batches({"x": x, "s": np.float32(2.0)}, 3)
    np.testing.assert_array_equal(parts["x"][1], x[[1, 4]])  # micro-batch i holds rows i, i + k, ...
    assert parts["s"] == 2.0  # scalars go to every micro-batch
    np.testing.assert_array_equal(join_micro_batches(parts["x"], 3), x)


def test_four_micro_batches_give_the_whole_batchs_update():
    batch = big_batch()
    whole = jax.jit(tr.make_train_step(deterministic_loss))
    accumulated = jax.jit(tr.make_train_step(deterministic_loss, micro_batches=4))
    ref, m_ref = whole(fresh_state(8), batch)
    new, m = accumulated(fresh_state(8), batch)
    chex.assert_trees_all_close(new.params, ref.params, rtol=1e-5, atol=1e-6)
    for name in ("loss_sum", "count", "correct_sum", "grad_norm"):
        np.testing.assert_allclose(m[name], m_ref[name], rtol=1e-5)
    # the mean of per-micro-batch means (what optax.MultiSteps averages) is another gradient here
    mean_grad = jax.jit(jax.grad(lambda p, b: (lambda s, c, _: s / c)(*deterministic_loss(p, b, None))))
    means = [mean_grad(ref.params, {k: v[i::4] for k, v in batch.items()}) for i in range(4)]  # rows i, i+4, ...
    mean_of_means = jax.tree.map(lambda *g: np.mean(np.asarray(g), axis=0), *means)
    whole_grad = mean_grad(ref.params, batch)
    gap = max(float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(jax.tree.leaves(mean_of_means),
                                                                       jax.tree.leaves(whole_grad)))
    assert gap > 1e-3


def _carried_loss(params, batch, carry, key):
    """Squared error of ``w x + 0.1 c`` with a running sum ``c`` of x carried per row."""
    del key
    pred = params["w"] * batch["x"] + 0.1 * carry["c"]
    err = jnp.where(batch["mask"], jnp.square(pred - 1.0), 0.0)
    return jnp.sum(err), jnp.sum(batch["mask"]), {}, {"c": carry["c"] + batch["x"]}


def test_the_carry_is_split_with_its_rows_and_joined_back_in_order():
    state = tr.create_train_state({"w": jnp.zeros(())}, tr.make_optimizer("sgd", 0.1), jax.random.key(0))
    batch = {"x": np.arange(8, dtype=np.float32), "mask": np.array([1, 1, 0, 1, 1, 1, 1, 0], bool)}
    carry = {"c": np.linspace(0, 1, 8).astype(np.float32)}
    ref_state, ref_m, ref_carry = jax.jit(tr.make_carried_train_step(_carried_loss))(state, batch, carry)
    new, m, new_carry = jax.jit(tr.make_carried_train_step(_carried_loss, micro_batches=2))(state, batch, carry)
    np.testing.assert_allclose(new.params["w"], ref_state.params["w"], rtol=1e-6)
    np.testing.assert_array_equal(new_carry["c"], ref_carry["c"])
    np.testing.assert_array_equal(new_carry["c"], carry["c"] + batch["x"])
    assert float(m["count"]) == float(ref_m["count"]) == 6.0


def test_micro_batches_must_divide_the_batch():
    with pytest.raises(ValueError, match=r"micro_batches=3 must divide the batch size: batch leaf \['lengths'\]"):
        jax.jit(tr.make_train_step(deterministic_loss, micro_batches=3))(fresh_state(8), big_batch())
    with pytest.raises(ValueError, match="micro_batches must be an integer >= 1, got 0"):
        tr.make_train_step(deterministic_loss, micro_batches=0)
