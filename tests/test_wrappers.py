"""Cell wrappers against plain Python loops: fed inputs (attention-style decoders), recurrent dropout, zoneout."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import cells, unroll, wrappers
from rnn_jax.minimal import min_gru
from tests.conftest import assert_close

I, H, F, B, T, S = 3, 4, 5, 2, 6, 7
LENGTHS = jnp.array([6, 3], jnp.int32)
MEMORY = jax.random.normal(jax.random.key(10), (B, S, F))  # what an attention attends over: data, not params


def attend(feed_params, carry, memory=MEMORY):
    """Dot-product attention from the previous h: ``context [B, F]`` over ``memory [B, S, F]``."""
    query = cells.carry_h(carry) @ feed_params["w_q"]  # [B, F]
    weights = jax.nn.softmax(jnp.einsum("bsf,bf->bs", memory, query), axis=-1)  # [B, S]
    return jnp.einsum("bs,bsf->bf", weights, memory)


def init_attention(key, out_size):
    return {"w_q": jax.random.normal(key, (out_size, F)) * 0.5}


BASES = {"lstm": lambda: cells.lstm(H), "lstm_proj": lambda: cells.lstm(H, proj_size=2), "gru": lambda: cells.gru(H),
         "min_gru": lambda: min_gru(H)}


def _fed(name, emit_feed=False):
    base = BASES[name]()
    return base, wrappers.feed_inputs(base, attend, F, feed_init=functools.partial(init_attention,
                                                                                     out_size=base.output_size),
                                      emit_feed=emit_feed)


def loop_reference(base, params, xs, lengths, emit_feed=False):
    """The decoder by hand: at each step the context from the previous carry, concatenated to x_t."""
    p = {k: v for k, v in params.items() if k != "feed"}  # w_ih [I + F, G*H], as a plain cell of input I + F
    carry = base.initial_carry((B,))
    ys = []
    for t in range(T):
        context = attend(params["feed"], carry)  # [B, F]
        new, y = base.step(p, carry, base.project_inputs(p, jnp.concatenate([xs[:, t], context], -1)))
        if emit_feed:
            y = jnp.concatenate([y, context], -1)
        valid = (t < lengths)[:, None]
        carry = jax.tree.map(lambda n, o: jnp.where(valid, n, o), new, carry)
        ys.append(jnp.where(valid, y, 0.0))
    return carry, jnp.stack(ys, 1)


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("hoist", [True, False])
def test_fed_cell_unroll_equals_a_python_loop(name, hoist):
    base, cell = _fed(name)
    params = cell.init(jax.random.key(0), I)
    assert params["w_ih"].shape == (I + F, base.num_gates * H) and cell.input_size(params) == I
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    got = jax.jit(lambda p, x: unroll(cell, p, x, LENGTHS, hoist_inputs=hoist))(params, xs)
    assert_close(got, loop_reference(base, params, xs, LENGTHS))
    g_got = jax.grad(lambda p: jnp.sum(unroll(cell, p, xs, LENGTHS, hoist_inputs=hoist)[1] ** 2))(params)
    g_want = jax.grad(lambda p: jnp.sum(loop_reference(base, p, xs, LENGTHS)[1] ** 2))(params)
    assert_close(g_got, g_want, "grad")
    assert np.abs(np.asarray(g_got["feed"]["w_q"])).sum() > 0  # the feed's parameters are trained


def test_emit_feed_appends_the_context_and_steps_decode_alike():
    base, cell = _fed("lstm", emit_feed=True)
    params = cell.init(jax.random.key(2), I)
    xs = jax.random.normal(jax.random.key(3), (B, T, I))
    assert cell.output_size == H + F
    final, ys = unroll(cell, params, xs, LENGTHS)
    assert ys.shape == (B, T, H + F)
    assert_close((final, ys), loop_reference(base, params, xs, LENGTHS, emit_feed=True))
    carry = cell.initial_carry((B,))  # step by step, as a decoder samples, against the whole unroll
    full_final, full_ys = unroll(cell, params, xs)
    for t in range(T):
        carry, y = cell.step(params, carry, cell.project_inputs(params, xs[:, t]))
        assert_close(y, full_ys[:, t], err_msg=f"step {t}")
    assert_close(carry, full_final)


def test_fed_cell_record_and_init():
    base = cells.gru(H)
    cell = wrappers.feed_inputs(base, attend, F)
    assert cell.tail is None and cell.parallel is None and cell.feed_size == F
    assert dict(cell.options)["feed_size"] == F and cell.describe() != base.describe()
    assert_close(cell.init(jax.random.key(4), I), base.init(jax.random.key(4), I + F), "exact")
    with pytest.raises(ValueError, match="affine"):
        wrappers.feed_inputs(cells.lstm(H, layer_norm=True), attend, F)
    with pytest.raises(ValueError, match="feeds nothing yet"):
        wrappers.feed_inputs(cell, attend, F)
    with pytest.raises(ValueError, match="feed_size must be an integer >= 1"):
        wrappers.feed_inputs(base, attend, 0)


def test_recurrent_dropout_masks_h_before_the_step():
    base = cells.gru(H)
    key = jax.random.key(5)
    cell = wrappers.recurrent_dropout(base, 0.5, key, (B,))
    params = base.init(jax.random.key(6), I)
    h = jax.random.normal(jax.random.key(7), (B, H))
    proj = base.project_inputs(params, jnp.ones((B, I)))
    mask = np.asarray(jax.random.bernoulli(key, 0.5, (B, H)), np.float32) / 0.5
    assert_close(cell.step(params, h, proj), base.step(params, h * mask, proj), "exact")
    assert cell.tail is None and dict(cell.options)["recurrent_dropout"] == 0.5


def test_zoneout_step_keeps_old_or_mixes():
    base = cells.lstm(H)
    params = base.init(jax.random.key(8), I)
    carry = cells.LSTMState(jnp.full((B, H), 0.5), jnp.full((B, H), -0.5))
    proj = base.project_inputs(params, jnp.ones((B, I)))
    new, _ = base.step(params, carry, proj)
    expect, y = wrappers.zoneout(base, 0.25).step(params, carry, proj)
    assert_close(expect, jax.tree.map(lambda n, o: 0.25 * o + 0.75 * n, new, carry), "exact")
    assert_close(y, expect.h, "exact")
    key = jax.random.key(9)
    train = wrappers.zoneout(base, 0.25, train=True)
    assert train.project_inputs(params, (jnp.ones((B, I)), key))[1] is key  # keys pass through
    drawn, _ = train.step(params, carry, (proj, key))
    k_h, k_c = jax.random.split(key, 2)
    assert_close(drawn.h, jnp.where(jax.random.bernoulli(k_h, 0.25, (B, H)), carry.h, new.h), "exact")
    assert_close(drawn.c, jnp.where(jax.random.bernoulli(k_c, 0.25, (B, H)), carry.c, new.c), "exact")
