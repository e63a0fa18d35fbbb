"""The cuDNN kernel against the scan, and where 'auto' takes it (rnn_jax.kernels.cudnn).

Two backends run the same grid of LSTM specs (bidirectional x fixed/variable lengths, with layers, bias
and initial state alternating; outputs and final states at 1e-5, gradients of parameters, inputs and
initial states at 1e-4):

* ``reference``, on any machine: `jax.experimental.rnn`'s forward and backward calls replaced by JAX's
  own reference of them (``lstm_ref`` over the weights ``unpack_lstm_weights`` reads from the flat vector,
  its gradient by autodiff). That holds our side to JAX's definition of the call: the flat weight layout,
  the state layout, lengths (cuDNN's >= 1, and reverse within the length), the lone backward direction,
  the custom_vjp and the vmap rule. It cannot say that cuDNN computes what ``lstm_ref`` does: that is
  JAX's own test, and ours on a GPU.
* ``cuda``: the real cuDNN call, under ``jax.default_matmul_precision('highest')`` (no TF32); skipped
  without a CUDA GPU (`benchmarks/run_gpu.sh` runs it on the device machine).
"""

import collections
import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn as jax_rnn

from rnn_jax import GRU, LSTM, RNN, cells, kernels, unroll
from rnn_jax.kernels import choice, cudnn
from tests.conftest import assert_close
from tests.kernels.helpers import assert_unroll_matches_the_scan, spec_loss

T, B, I, H = 6, 4, 3, 5
LENGTHS = np.array([6, 2, 0, 4], np.int32)  # unsorted, a full one and an empty one
NO_CUDA = cudnn.unavailable_reason()
GRID = [(bidir, var) for bidir in (False, True) for var in (False, True)]


def _reference_fwd(x, h0, c0, w, lengths, input_size, hidden_size, num_layers, dropout, bidirectional, precision):
    del precision
    weights = jax_rnn.unpack_lstm_weights(w, input_size, hidden_size, num_layers, bidirectional)
    out = jax_rnn.lstm_ref(x, h0, c0, *weights, lengths, input_size, hidden_size, num_layers, dropout, bidirectional)
    return out, (x, h0, c0, w, lengths)


def _reference_bwd(input_size, hidden_size, num_layers, dropout, bidirectional, precision, residuals, grads):
    x, h0, c0, w, lengths = residuals
    _, vjp = jax.vjp(lambda *a: _reference_fwd(*a, lengths, input_size, hidden_size, num_layers, dropout,
                                               bidirectional, precision)[0], x, h0, c0, w)
    return (*vjp(tuple(grads)), jnp.zeros_like(lengths))


@pytest.fixture(params=["reference", "cuda"])
def backend(request, monkeypatch):
    """Runs the test with JAX's reference in place of cuDNN's call (any machine), or with cuDNN (a GPU)."""
    if request.param == "cuda":
        if NO_CUDA is not None:
            pytest.skip(f"needs a CUDA GPU: {NO_CUDA}")
        with jax.default_matmul_precision("highest"):
            yield request.param
        return
    monkeypatch.setattr(jax_rnn, "lstm_fwd", _reference_fwd)
    monkeypatch.setattr(jax_rnn, "lstm_bwd", _reference_bwd)
    monkeypatch.setattr(cudnn, "unavailable_reason", lambda: None)
    yield request.param


@pytest.mark.parametrize("i,bidir,var", [(i,) + g for i, g in enumerate(GRID)],
                         ids=[f"{'bi' if b else 'uni'}-{'var' if v else 'fixed'}" for b, v in GRID])
def test_spec_matches_the_scan(i, bidir, var, backend):
    spec = LSTM(I, H, num_layers=1 + i % 2, bidirectional=bidir, bias=i != 1, kernel="cudnn")
    scan = dataclasses.replace(spec, kernel="scan")
    params = spec.init(jax.random.key(i))
    rng = np.random.default_rng(i)
    x = jnp.asarray(rng.standard_normal((T, B, I)), jnp.float32)
    lengths = LENGTHS if var else None
    state = None
    if i % 3 != 1:
        zeros = spec.cell().initial_carry((spec.num_layers * spec.num_directions, B))
        state = jax.tree.map(lambda z: jnp.asarray(rng.standard_normal(z.shape), jnp.float32), zeros)
    assert_close(jax.jit(spec.apply)(params, x, lengths, state), jax.jit(scan.apply)(params, x, lengths, state))
    argnums = (0, 1, 2) if state is not None else (0, 1)
    got = jax.jit(jax.grad(spec_loss(spec, lengths), argnums))(params, x, state)
    want = jax.jit(jax.grad(spec_loss(scan, lengths), argnums))(params, x, state)
    assert_close(got, want, "grad")


def test_unroll_reverse_unbatched_vmap_and_empty(backend):
    cell = cells.lstm(H)
    assert_unroll_matches_the_scan(cell, "cudnn", LENGTHS, I, (B, T))
    params = cell.init(jax.random.key(1), I)
    many = jax.vmap(lambda k: cell.init(k, I))(jax.random.split(jax.random.key(3), 3))  # 3 parameter sets
    batches = jax.random.normal(jax.random.key(4), (3, B, T, I))

    def loss(p, kernel):
        return jnp.sum(jax.vmap(lambda q, x: unroll(cell, q, x, LENGTHS, kernel=kernel)[1])(p, batches) ** 2)

    assert_close(jax.jit(loss, static_argnums=1)(many, "cudnn"), jax.jit(loss, static_argnums=1)(many, "scan"))
    assert_close(jax.grad(loss)(many, "cudnn"), jax.grad(loss)(many, "scan"), "grad")
    for shape in ((0, T, I), (B, 0, I)):
        final, ys = unroll(cell, params, jnp.zeros(shape), kernel="cudnn")
        assert ys.shape == shape[:2] + (H,) and final.c.shape == (shape[0], H)


def test_the_flat_weights_are_jax_experimental_rnns_layout():
    spec = LSTM(I, H, bidirectional=True)
    params = spec.init(jax.random.key(7))
    layer = [params[0][d] for d in ("forward", "backward")]
    w = cudnn.flat_weights(layer)
    assert w.shape == (jax_rnn.get_num_params_in_lstm(I, H, 1, True),)
    W_ih, W_hh, b_ih, b_hh = jax_rnn.unpack_lstm_weights(w, I, H, 1, True)
    for d, p in enumerate(layer):
        np.testing.assert_array_equal(W_ih[d], p["w_ih"].T)
        np.testing.assert_array_equal(W_hh[d], p["w_hh"].T)
        np.testing.assert_array_equal(b_ih[d], p["b_ih"])
        np.testing.assert_array_equal(b_hh[d], p["b_hh"])


# (what, spec, apply keywords, the reason's words): what cuDNN's LSTM does not serve
DECLINED = [
    ("gru", GRU(I, H), {}, "not 'gru'"),
    ("rnn", RNN(I, H), {}, "not 'elman'"),
    ("proj_size", LSTM(I, H, proj_size=2), {}, "proj_size=2"),
    ("peephole", LSTM(I, H, peephole=True), {}, "peephole=True"),
    ("layer_norm", LSTM(I, H, layer_norm=True), {}, "layer_norm=True"),
    ("bfloat16", LSTM(I, H, dtype=jnp.bfloat16), {}, "float32, not bfloat16"),
    ("checkpoint", LSTM(I, H, checkpoint=True), {}, "checkpoint=True"),
    ("zoneout", LSTM(I, H, zoneout=0.2), {}, "wrapped"),
]


@pytest.mark.parametrize("what,spec,kw,words", DECLINED, ids=[d[0] for d in DECLINED])
def test_what_cudnn_does_not_serve_is_refused_by_name_with_the_reason(what, spec, kw, words, monkeypatch):
    monkeypatch.setattr(cudnn, "unavailable_reason", lambda: None)  # as on a GPU: the arguments decide
    params = spec.init(jax.random.key(0))
    with pytest.raises(ValueError, match="kernel='cudnn' cannot run this layer: .*" + words.replace("(", r"\(")):
        dataclasses.replace(spec, kernel="cudnn").apply(params, jnp.ones((T, B, I)), **kw)


@pytest.mark.parametrize("devices", [1, 2])
def test_auto_on_a_gpu_takes_cudnn_with_one_device_only(devices, backend, monkeypatch, caplog):
    """On a CUDA GPU 'auto' takes cuDNN for the LSTM; with several devices it declines (not partitioned)."""
    if backend == "reference":  # as on a GPU: the backend name and the device count are what 'auto' reads
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    elif devices > jax.device_count():
        pytest.skip(f"needs {devices} GPUs")
    monkeypatch.setattr(jax, "device_count", lambda: devices)
    monkeypatch.setattr(choice, "_DECLINED", collections.Counter())
    cell = cells.lstm(H)
    with caplog.at_level(logging.WARNING, logger="rnn_jax.kernels"):
        assert choice.choose("auto", cell, cell.init(jax.random.key(0), I)) == ("cudnn" if devices == 1 else "scan")
        assert choice.choose("auto", cells.gru(H), cells.gru(H).init(jax.random.key(0), I)) == "scan"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert ("not partitioned over devices (2 here)" in logged) == (devices == 2)
    assert "not 'gru'" in logged and kernels.declined()


def test_off_a_cuda_gpu_cudnn_is_missing_and_auto_never_considers_it():
    if NO_CUDA is None:
        pytest.skip("this machine has a CUDA GPU")
    spec = LSTM(I, H, kernel="cudnn")
    with pytest.raises(kernels.KernelUnavailable, match="kernel='cudnn' cannot run this layer: " + NO_CUDA[:20]):
        spec.apply(spec.init(jax.random.key(0)), jnp.ones((T, B, I)))
    assert all(k != "cudnn" for k, _ in kernels.declined())
