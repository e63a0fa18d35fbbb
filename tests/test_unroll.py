"""unroll() against references: a plain Python loop over `cell.step`, each sequence run alone, reversal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import cells, reverse_padded, unroll
from rnn_jax.cells import LSTMState
from rnn_jax.sequence import lengths_to_mask
from tests.conftest import assert_close

I, H, B, T = 3, 4, 3, 5
LENGTHS = np.array([5, 2, 0], np.int32)

CELLS = {
    "lstm": lambda: cells.lstm(H, proj_size=3),  # h (3) and c (4) differ in size: catches mixed-up leaves
    "gru": lambda: cells.gru(H),
    "elman": lambda: cells.elman(H),
}

_CELL_CACHE = {}
_FN_CACHE = {}


def _cell(name):
    """Returns (cell, params, xs [B, T, I], random initial carry), cached."""
    if name not in _CELL_CACHE:
        cell = CELLS[name]()
        params = cell.init(jax.random.key(0), I)
        xs = jax.random.normal(jax.random.key(1), (B, T, I))
        leaves, tree = jax.tree.flatten(cell.initial_carry((B,)))
        ks = jax.random.split(jax.random.key(2), len(leaves))
        carry = jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, l.shape) for k, l in zip(ks, leaves)])
        _CELL_CACHE[name] = (cell, params, xs, carry)
    return _CELL_CACHE[name]


def _jit_unroll(name, **static):
    """Returns a cached ``jax.jit`` of unroll for cell `name` with static keyword options."""
    k = (name, tuple(sorted(static.items())))
    if k not in _FN_CACHE:
        cell = _cell(name)[0]
        _FN_CACHE[k] = jax.jit(lambda params, xs, lengths=None, carry=None, mask=None, dropout_key=None:
                               unroll(cell, params, xs, lengths, carry, mask=mask, dropout_key=dropout_key,
                                      **static))
    return _FN_CACHE[k]


def _jit_step(name):
    k = (name, "step")
    if k not in _FN_CACHE:
        cell = _cell(name)[0]
        _FN_CACHE[k] = jax.jit(lambda params, carry, x: cell.step(params, carry, cell.project_inputs(params, x)))
    return _FN_CACHE[k]


def loop_reference(name, params, xs, carry=None, valid=None, zoneout=0.0):
    """A plain Python loop over `cell.step`: batch-major xs [B, T, I], optional valid [B, T] (hold + zero).

    With `zoneout`, the carry is the expectation ``z*old + (1-z)*new`` and the output is its h.
    """
    cell = _cell(name)[0]
    step = _jit_step(name)
    carry = cell.initial_carry((xs.shape[0],)) if carry is None else carry
    ys = []
    for t in range(xs.shape[1]):
        new, y = step(params, carry, xs[:, t])
        if zoneout:
            new = jax.tree.map(lambda n, o: zoneout * o + (1 - zoneout) * n, new, carry)
            y = new.h if isinstance(new, LSTMState) else new
        if valid is not None:
            v = np.asarray(valid[:, t])[:, None]
            new = jax.tree.map(lambda n, o: np.where(v, n, o), new, carry)
            y = np.where(v, y, 0.0)
        carry = new
        ys.append(np.asarray(y))
    return carry, np.stack(ys, axis=1)


def _row(tree, b):
    return jax.tree.map(lambda a: a[b:b + 1], tree)


# --------------------------------------------------------------------------- against references


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_scan_matches_python_loop(name):
    cell, params, xs, carry = _cell(name)
    final, ys = _jit_unroll(name)(params, xs)
    ref_final, ref_ys = loop_reference(name, params, xs)
    assert ys.shape == (B, T, cell.output_size)
    assert_close(ys, ref_ys, "exact")
    assert_close(final, ref_final, "exact")
    final, ys = _jit_unroll(name)(params, xs, carry=carry)
    ref_final, ref_ys = loop_reference(name, params, xs, carry)
    assert_close((final, ys), (ref_final, ref_ys), "exact")


@pytest.mark.parametrize("kind,batch,time,hidden", [("lstm", 1, 1, 1), ("gru", 1, 3, 1), ("elman", 2, 1, 1),
                                                    ("lstm", 1, 2, 2)])
def test_small_sizes_match_python_loop(kind, batch, time, hidden):
    """Sizes of 1 (batch, time, hidden): scan with lengths against a loop over the step."""
    cell = {"lstm": cells.lstm, "gru": cells.gru, "elman": cells.elman}[kind](hidden)
    params = cell.init(jax.random.key(0), 1)
    xs = jax.random.normal(jax.random.key(1), (batch, time, 1))
    lengths = np.full((batch,), time, np.int32)
    if batch > 1:
        lengths[-1] = time - 1
    final, ys = jax.jit(lambda p, x, l: unroll(cell, p, x, l))(params, xs, lengths)
    carry = cell.initial_carry((batch,))
    ref_ys = np.zeros(ys.shape, np.float32)
    ref_final = list(range(batch))
    for b in range(batch):
        c = jax.tree.map(lambda a: a[b], carry)
        for t in range(lengths[b]):
            c, ref_ys[b, t] = cell.step(params, c, cell.project_inputs(params, xs[b, t]))
        ref_final[b] = c
    assert_close(ys, ref_ys, "exact")
    assert_close(final, jax.tree.map(lambda *a: jnp.stack(a), *ref_final), "exact")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_masked_batch_matches_each_sequence_alone(name):
    cell, params, xs, carry = _cell(name)
    final, ys = _jit_unroll(name)(params, xs, LENGTHS, carry)
    for b, L in enumerate(LENGTHS):
        if L == 0:  # length 0: the initial carry and zero outputs
            assert_close(_row(final, b), _row(carry, b), "exact")
        else:
            alone_final, alone_ys = _jit_unroll(name)(params, xs[b:b + 1, :L], carry=_row(carry, b))
            assert_close(_row(final, b), alone_final, "exact", err_msg=f"sequence {b}")
            assert_close(ys[b:b + 1, :L], alone_ys, "exact", err_msg=f"sequence {b}")
        assert np.all(np.asarray(ys[b, L:]) == 0.0)


def test_all_lengths_zero_return_initial_carry():
    cell, params, xs, carry = _cell("lstm")
    zeros = np.zeros(B, np.int32)
    final, ys = _jit_unroll("lstm")(params, xs, zeros, carry)
    assert_close(final, carry, "exact")
    assert np.all(np.asarray(ys) == 0.0)
    final, _ = _jit_unroll("lstm")(params, xs, zeros)
    assert_close(final, cell.initial_carry((B,)), "exact")


def test_non_prefix_mask_holds_carry_on_masked_steps():
    """A mask with holes: masked steps hold the carry and output zero (loop reference)."""
    _, params, xs, carry = _cell("gru")
    mask = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
    final, ys = _jit_unroll("gru")(params, xs, carry=carry, mask=mask)
    ref_final, ref_ys = loop_reference("gru", params, xs, carry, valid=mask)
    assert_close((final, ys), (ref_final, ref_ys), "exact")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_mask_equals_lengths(name):
    _, params, xs, carry = _cell(name)
    by_lengths = _jit_unroll(name)(params, xs, LENGTHS, carry)
    by_mask = _jit_unroll(name)(params, xs, carry=carry, mask=lengths_to_mask(LENGTHS, T))
    assert_close(by_mask, by_lengths, "exact")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_reverse_within_length(name):
    _, params, xs, carry = _cell(name)
    final, ys = _jit_unroll(name, reverse=True)(params, xs, LENGTHS, carry)
    # reverse inside the length, run forward, reverse back
    f_final, f_ys = _jit_unroll(name)(params, reverse_padded(xs, LENGTHS), LENGTHS, carry)
    assert_close(final, f_final, "exact")
    assert_close(ys, reverse_padded(f_ys, LENGTHS), "exact")
    # each sequence's reversed slice run alone (NumPy reversal)
    xs_np, ys_np = np.asarray(xs), np.asarray(ys)
    for b, L in enumerate(LENGTHS):
        if L == 0:
            assert_close(_row(final, b), _row(carry, b), "exact")
        else:
            alone_final, alone_ys = loop_reference(name, params, xs_np[b:b + 1, :L][:, ::-1], _row(carry, b))
            assert_close(_row(final, b), alone_final, "exact")
            assert_close(ys_np[b:b + 1, :L], alone_ys[:, ::-1], "exact")
        assert np.all(ys_np[b, L:] == 0.0)


def test_reverse_without_lengths_is_a_flip():
    _, params, xs, _ = _cell("gru")
    final, ys = _jit_unroll("gru", reverse=True)(params, xs)
    ref_final, ref_ys = loop_reference("gru", params, xs[:, ::-1])
    assert_close(final, ref_final, "exact")
    assert_close(ys, ref_ys[:, ::-1], "exact")


@pytest.mark.parametrize("reverse", [False, True])
def test_batch_major_equals_time_major(reverse):
    _, params, xs, carry = _cell("lstm")
    bm = _jit_unroll("lstm", reverse=reverse)(params, xs, LENGTHS, carry)
    final, ys_tm = _jit_unroll("lstm", reverse=reverse, time_major=True)(params, jnp.swapaxes(xs, 0, 1),
                                                                          LENGTHS, carry)
    assert ys_tm.shape == (T, B, 3)
    assert_close((final, jnp.swapaxes(ys_tm, 0, 1)), bm, "exact")
    # a time-major mask is [T, B]
    by_mask = _jit_unroll("lstm", reverse=reverse, time_major=True)(
        params, jnp.swapaxes(xs, 0, 1), carry=carry, mask=lengths_to_mask(LENGTHS, T, time_major=True))
    assert_close(by_mask, (final, ys_tm), "exact")


def test_unbatched_input():
    cell, params, xs, carry = _cell("lstm")
    final, ys = unroll(cell, params, xs[0])
    assert ys.shape == (T, 3) and final.h.shape == (3,) and final.c.shape == (H,)
    ref_final, ref_ys = _jit_unroll("lstm")(params, xs[:1])
    assert_close((final, ys), (jax.tree.map(lambda c: c[0], ref_final), ref_ys[0]), "exact")
    # with a scalar length and an unbatched carry
    final, ys = unroll(cell, params, xs[1], lengths=2, carry=jax.tree.map(lambda c: c[1], carry))
    ref_final, ref_ys = _jit_unroll("lstm")(params, xs, LENGTHS, carry)
    assert_close((final, ys), (jax.tree.map(lambda c: c[1], ref_final), ref_ys[1]), "exact")


OPTION_SETS = [dict(unroll=2), dict(unroll=T), dict(checkpoint=True), dict(hoist_inputs=True), dict(hoist_inputs=False),
               dict(unroll=2, checkpoint=True, hoist_inputs=False, reverse=True)]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_performance_options_do_not_change_results(options):
    _, params, xs, carry = _cell("lstm")
    reverse = options.get("reverse", False)
    got = _jit_unroll("lstm", **options)(params, xs, LENGTHS, carry)
    want = _jit_unroll("lstm", reverse=reverse)(params, xs, LENGTHS, carry)
    assert_close(got, want, "exact")


_GRAD_CACHE = {}


def _grad_fn(checkpoint):
    if checkpoint not in _GRAD_CACHE:
        cell = _cell("lstm")[0]

        def loss(params, xs, carry, lengths):
            final, ys = unroll(cell, params, xs, lengths, carry, checkpoint=checkpoint)
            return jnp.sum(ys ** 2) + jnp.sum(final.c * final.h[..., :1])

        _GRAD_CACHE[checkpoint] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    return _GRAD_CACHE[checkpoint]


def test_checkpoint_gives_same_gradients():
    _, params, xs, carry = _cell("lstm")
    plain = _grad_fn(False)(params, xs, carry, LENGTHS)
    remat = _grad_fn(True)(params, xs, carry, LENGTHS)
    assert_close(remat, plain, "exact")
    # padding gets no gradient; valid steps do
    g_xs = np.asarray(plain[1][1])
    for b, L in enumerate(LENGTHS):
        assert np.all(g_xs[b, L:] == 0.0)
        assert np.all(np.abs(g_xs[b, :L]).sum(-1) > 0)


def test_jit_matches_no_jit():
    cell, params, xs, carry = _cell("gru")
    eager = unroll(cell, params, xs, LENGTHS, carry, reverse=True)
    jitted = _jit_unroll("gru", reverse=True)(params, xs, LENGTHS, carry)
    assert_close(jitted, eager, "exact")


def test_jitted_train_step_does_not_retrace():
    cell, params, xs, carry = _cell("gru")
    traces = []

    @jax.jit
    def train_step(params, xs, lengths):
        traces.append(1)

        def loss(p):
            _, ys = unroll(cell, p, xs, lengths)
            return jnp.sum(ys ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        return value, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)

    v1, params2 = train_step(params, xs, LENGTHS)
    v2, _ = train_step(params2, xs + 1.0, np.array([1, 5, 3], np.int32))  # new values, same shapes
    assert len(traces) == 1
    assert float(v1) != float(v2)
    train_step(params, xs[:, :4], np.array([1, 4, 3], np.int32))  # a new shape does retrace
    assert len(traces) == 2


# --------------------------------------------------------------------------- dropout and zoneout


@pytest.mark.parametrize("rates", [dict(input_dropout=0.5), dict(recurrent_dropout=0.5),
                                   dict(input_dropout=0.3, recurrent_dropout=0.3)])
def test_dropout_is_off_when_deterministic(rates):
    _, params, xs, carry = _cell("lstm")
    got = _jit_unroll("lstm", deterministic=True, **rates)(params, xs, LENGTHS, carry)
    want = _jit_unroll("lstm")(params, xs, LENGTHS, carry)
    assert_close(got, want, "exact")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_zoneout_at_evaluation_uses_expectation(name):
    _, params, xs, carry = _cell(name)
    got = _jit_unroll(name, zoneout=0.25, deterministic=True)(params, xs, LENGTHS, carry)
    want = loop_reference(name, params, xs, carry, valid=lengths_to_mask(LENGTHS, T), zoneout=0.25)
    assert_close(got, want, "exact")
    assert not np.allclose(got[1], _jit_unroll(name)(params, xs, LENGTHS, carry)[1], atol=1e-3)


def _noisy_loop(name, params, xs, carry, rate_name, rate, key):
    """A Python loop with unroll's training noise drawn by hand from its key plan: the key splits into
    (input, recurrent, zoneout); input and recurrent masks are one per sequence, zoneout draws per step
    and per carry leaf from one key per step."""
    cell = _cell(name)[0]
    k_in, k_rec, k_zone = jax.random.split(key, 3)
    h_size = cell.output_size
    if rate_name == "input_dropout":
        xs = xs * np.asarray(jax.random.bernoulli(k_in, 1 - rate, (1, B, I)), np.float32)[0][:, None] / (1 - rate)
    rec_mask = np.asarray(jax.random.bernoulli(k_rec, 1 - rate, (B, h_size)), np.float32) / (1 - rate)
    step_keys = jax.random.split(k_zone, T)
    valid = np.asarray(lengths_to_mask(LENGTHS, T))
    ys = []
    for t in range(T):
        c_in = carry
        if rate_name == "recurrent_dropout":
            c_in = carry._replace(h=carry.h * rec_mask) if isinstance(carry, LSTMState) else carry * rec_mask
        new, y = cell.step(params, c_in, cell.project_inputs(params, xs[:, t]))
        if rate_name == "zoneout":
            leaf_keys = jax.random.split(step_keys[t], len(jax.tree.leaves(carry)))
            leaves = [jnp.where(jax.random.bernoulli(k, rate, n.shape), o, n)
                      for k, n, o in zip(leaf_keys, jax.tree.leaves(new), jax.tree.leaves(carry))]
            new = jax.tree.unflatten(jax.tree.structure(carry), leaves)
            y = new.h if isinstance(new, LSTMState) else new
        v = valid[:, t][:, None]
        carry = jax.tree.map(lambda n, o: jnp.where(v, n, o), new, carry)
        ys.append(jnp.where(v, y, 0.0))
    return carry, jnp.stack(ys, 1)


@pytest.mark.parametrize("rate", ["input_dropout", "recurrent_dropout", "zoneout"])
def test_training_noise_equals_a_loop_with_hand_drawn_masks(rate):
    cell, params, xs, carry = _cell("lstm")
    with pytest.raises(ValueError, match="dropout_key"):
        unroll(cell, params, xs, LENGTHS, **{rate: 0.5}, deterministic=False)
    got = _jit_unroll("lstm", deterministic=False, **{rate: 0.5})(params, xs, LENGTHS, carry,
                                                                   dropout_key=jax.random.key(1))
    assert_close(got, _noisy_loop("lstm", params, xs, carry, rate, 0.5, jax.random.key(1)), "exact")
    assert np.all(np.asarray(got[1])[2] == 0.0)  # padding stays zero under noise


_PROBE = {}


def _probe(kind):
    """Returns (cell, params, jitted unroll): a relu Elman cell that exposes the dropout masks.

    'input': W_ih = identity, W_hh = 0, so y_t = x_t * m_in.  'recurrent': W_ih = 0, W_hh = identity, so
    y_t = h_0 * m_h**(t+1). Biases are zero; inputs and h_0 positive.
    """
    if kind not in _PROBE:
        cell = cells.elman(H, nonlinearity="relu")
        eye, zero = jnp.eye(H), jnp.zeros((H, H))
        params = {"w_ih": eye if kind == "input" else zero, "w_hh": zero if kind == "input" else eye,
                  "b_ih": jnp.zeros(H), "b_hh": jnp.zeros(H)}
        rate = {"input_dropout": 0.5} if kind == "input" else {"recurrent_dropout": 0.5}
        fn = jax.jit(lambda params, xs, carry, key: unroll(cell, params, xs, carry=carry, dropout_key=key,
                                                           deterministic=False, **rate))
        _PROBE[kind] = (cell, params, fn)
    return _PROBE[kind]


def test_input_dropout_mask_is_variational():
    _, params, fn = _probe("input")
    x = 1.0 + jax.random.uniform(jax.random.key(3), (B, 1, H))
    xs = jnp.broadcast_to(x, (B, T, H)) * jnp.arange(1.0, T + 1.0).reshape(1, T, 1)  # [B, T, H]
    _, ys = fn(params, xs, jnp.zeros((B, H)), jax.random.key(4))
    m = np.asarray(ys) / np.asarray(xs)  # [B, T, H]
    np.testing.assert_allclose(m, np.broadcast_to(m[:, :1], m.shape), rtol=1e-6)  # same mask at every step
    assert set(np.round(np.unique(m), 5)) == {0.0, 2.0}  # inverted dropout: 0 or 1/(1-rate)
    assert not np.array_equal(m[0, 0], m[1, 0]) or not np.array_equal(m[1, 0], m[2, 0])  # one per sequence


def test_recurrent_dropout_mask_is_variational():
    _, params, fn = _probe("recurrent")
    h0 = 0.5 + jax.random.uniform(jax.random.key(5), (B, H))
    _, ys = fn(params, jnp.ones((B, T, H)), h0, jax.random.key(6))
    m = np.asarray(ys[:, 0]) / np.asarray(h0)  # [B, H]
    assert set(np.round(np.unique(m), 5)) == {0.0, 2.0}
    powers = np.arange(1, T + 1).reshape(1, T, 1)
    assert_close(ys, np.asarray(h0)[:, None, :] * m[:, None, :] ** powers, "forward")


def test_zoneout_training_keeps_old_or_new_per_unit():
    cell, params, xs, carry = _cell("gru")
    _, ys = _jit_unroll("gru", zoneout=0.5, deterministic=False)(params, xs, carry=carry,
                                                                  dropout_key=jax.random.key(7))
    step = _jit_step("gru")
    h = np.asarray(carry)
    kept = []
    for t in range(T):
        new = np.asarray(step(params, jnp.asarray(h), xs[:, t])[0])
        y = np.asarray(ys[:, t])
        is_old, is_new = np.isclose(y, h, atol=1e-6), np.isclose(y, new, atol=1e-6)
        assert np.all(is_old | is_new), f"step {t}"
        kept.append(is_old & ~is_new)
        h = y
    kept = np.stack(kept)
    assert kept.any() and (~kept).any()


# --------------------------------------------------------------------------- argument checks


def _bad_calls():
    return {
        "rank1": (lambda c, p, xs, k: unroll(c, p, xs[0, 0]), ValueError, r"xs must have shape"),
        "rank4": (lambda c, p, xs, k: unroll(c, p, xs[None]), ValueError, r"xs must have shape"),
        "features": (lambda c, p, xs, k: unroll(c, p, xs[..., :2]), ValueError, r"xs must have 3 features"),
        "long": (lambda c, p, xs, k: unroll(c, p, xs, np.array([6, 1, 1])), ValueError,
                 r"lengths must lie in \[0, 5\]"),
        "negative": (lambda c, p, xs, k: unroll(c, p, xs, np.array([1, -1, 1])), ValueError,
                     r"lengths must lie in"),
        "float": (lambda c, p, xs, k: unroll(c, p, xs, np.array([1.0, 2.0, 3.0])), TypeError,
                  r"lengths must be an integer"),
        "lengths_shape": (lambda c, p, xs, k: unroll(c, p, xs, np.array([1, 2])), ValueError,
                          r"lengths must have shape \(3,\)"),
        "lengths_2d": (lambda c, p, xs, k: unroll(c, p, xs, np.ones((3, 1), np.int32)), ValueError,
                       r"lengths must have shape"),
        "carry_batch": (lambda c, p, xs, k: unroll(c, p, xs, carry=c.initial_carry((2,))), ValueError,
                        r"carry must have shapes"),
        "carry_size": (lambda c, p, xs, k: unroll(c, p, xs, carry=LSTMState(jnp.zeros((3, 3)),
                                                                            jnp.zeros((3, 3)))),
                       ValueError, r"carry must have shapes"),
        "carry_structure": (lambda c, p, xs, k: unroll(c, p, xs, carry=jnp.zeros((3, 3))), ValueError,
                            r"carry must have the structure"),
        "mask_shape": (lambda c, p, xs, k: unroll(c, p, xs, mask=np.ones((5, 3), bool)), ValueError,
                       r"mask must have shape \[3, 5\]"),
        "mask_and_lengths": (lambda c, p, xs, k: unroll(c, p, xs, LENGTHS, mask=np.ones((3, 5), bool)),
                             ValueError, r"lengths or mask"),
        "rate": (lambda c, p, xs, k: unroll(c, p, xs, zoneout=1.0), ValueError, r"zoneout must lie in"),
        "negative_rate": (lambda c, p, xs, k: unroll(c, p, xs, input_dropout=-0.1), ValueError,
                          r"input_dropout must lie in"),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_naming_the_argument(case):
    cell, params, xs, _ = _cell("lstm")
    call, exc, match = _bad_calls()[case]
    with pytest.raises(exc, match=match):
        call(cell, params, xs, None)


def test_lengths_are_data_inside_jit():
    """Inside jit the range cannot be checked (lengths are tracers) but shape and dtype still are."""
    _, params, xs, _ = _cell("gru")
    fn = _jit_unroll("gru")
    with pytest.raises(TypeError, match="lengths must be an integer"):
        fn(params, xs, jnp.ones((B,), jnp.float32))
    with pytest.raises(ValueError, match="lengths must have shape"):
        fn(params, xs, jnp.ones((B + 1,), jnp.int32))
