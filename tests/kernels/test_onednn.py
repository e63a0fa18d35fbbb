"""The oneDNN kernel against the scan, and the rule of ``kernel='auto'`` (rnn_jax.kernels).

PyTorch parity of both kernels is tests/interop/test_torch.py (its grids run once per kernel). Here the
kernel is held to the scan on a covering grid of the specs (cell x bidirectional x fixed/variable lengths,
with layers, bias and initial state alternating), at 1e-5 on outputs and final states and 1e-4 on the
gradients of parameters, inputs and initial states; then unroll's own arguments, vmap, empty batches,
and which kernel 'auto' picks, declines (logged once, counted) or refuses by name.
"""

import collections
import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import GRU, LSTM, RNN, cells, kernels, unroll
from rnn_jax.kernels import choice, onednn_library
from tests.conftest import assert_close
from tests.kernels.helpers import assert_unroll_matches_the_scan, spec_loss

pytestmark = pytest.mark.skipif(onednn_library.unavailable_reason() is not None,
                                reason=str(onednn_library.unavailable_reason()))
T, B, I, H, P = 6, 4, 3, 5, 2
LENGTHS = np.array([6, 2, 0, 4], np.int32)  # unsorted, a full one and an empty one
TARGET = onednn_library.TARGETS[0]
SPECS = {
    "rnn_tanh": lambda **kw: RNN(I, H, **kw),
    "rnn_relu": lambda **kw: RNN(I, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: LSTM(I, H, **kw),
    "lstm_proj": lambda **kw: LSTM(I, H, proj_size=P, **kw),
    "gru": lambda **kw: GRU(I, H, **kw),
}
GRID = [(kind, bidir, var) for kind in SPECS for bidir in (False, True) for var in (False, True)]


def _case(i, kind, bidir, var):
    """Returns ``(spec kwargs, with_state)``: layers, bias and initial state alternate over the grid."""
    return dict(num_layers=1 + i % 2, bidirectional=bidir, bias=i % 3 != 1), i % 4 in (0, 3)


def _data(spec, with_state, var, seed):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((T, B, I)), jnp.float32)
    state = None
    if with_state:
        zeros = spec.cell().initial_carry((spec.num_layers * spec.num_directions, B))
        state = jax.tree.map(lambda z: jnp.asarray(rng.standard_normal(z.shape), jnp.float32), zeros)
    return x, (LENGTHS if var else None), state


@pytest.mark.parametrize("i,kind,bidir,var", [(i,) + g for i, g in enumerate(GRID)],
                         ids=[f"{k}-{'bi' if b else 'uni'}-{'var' if v else 'fixed'}" for k, b, v in GRID])
def test_spec_matches_the_scan(i, kind, bidir, var):
    kwargs, with_state = _case(i, kind, bidir, var)
    spec = SPECS[kind](kernel="onednn", **kwargs)
    scan = dataclasses.replace(spec, kernel="scan")
    params = spec.init(jax.random.key(i))
    x, lengths, state = _data(spec, with_state, var, i)
    assert TARGET in str(jax.make_jaxpr(spec.apply)(params, x, lengths, state))
    assert_close(jax.jit(spec.apply)(params, x, lengths, state), jax.jit(scan.apply)(params, x, lengths, state))
    argnums = (0, 1, 2) if with_state else (0, 1)
    got = jax.jit(jax.grad(spec_loss(spec, lengths), argnums))(params, x, state)
    want = jax.jit(jax.grad(spec_loss(scan, lengths), argnums))(params, x, state)
    assert_close(got, want, "grad")


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_unroll_reverse_unbatched_and_batch_major(name):
    cell = {"lstm": cells.lstm(H, proj_size=P), "gru": cells.gru(H), "elman": cells.elman(H)}[name]
    assert_unroll_matches_the_scan(cell, "onednn", LENGTHS, I, (B, T))


def test_vmap_over_batches_of_sequences_and_of_parameters():
    cell = cells.lstm(H)
    keys = jax.random.split(jax.random.key(3), 3)
    params = jax.vmap(lambda k: cell.init(k, I))(keys)  # 3 parameter sets
    xs = jax.random.normal(jax.random.key(4), (3, B, T, I))

    def run(kernel):
        return jax.jit(jax.vmap(lambda p, x: unroll(cell, p, x, LENGTHS, kernel=kernel)[1]))(params, xs)

    assert_close(run("onednn"), run("scan"))
    grad = {k: jax.grad(lambda p, k=k: jnp.sum(jax.vmap(lambda q, x: unroll(cell, q, x, kernel=k)[1])(p, xs) ** 2))(
        params) for k in ("onednn", "scan")}
    assert_close(grad["onednn"], grad["scan"], "grad")


def test_empty_batches_and_sequences_and_lengths_clipped_under_jit():
    cell = cells.gru(H)
    params = cell.init(jax.random.key(5), I)
    for shape in ((0, T, I), (B, 0, I)):
        final, ys = unroll(cell, params, jnp.zeros(shape), kernel="onednn")
        assert ys.shape == shape[:2] + (H,) and final.shape == (shape[0], H)
    xs = jax.random.normal(jax.random.key(6), (B, T, I))
    bad = jnp.array([-2, 3, T + 4, 0])  # under jit a length outside [0, T] acts clipped, for every kernel
    run = {k: jax.jit(lambda x, n, k=k: unroll(cell, params, x, n, kernel=k)) for k in ("onednn", "scan")}
    assert_close(run["onednn"](xs, bad), run["scan"](xs, bad))


def test_auto_picks_onednn_for_what_it_serves_and_scan_is_the_scan():
    for spec in (LSTM(I, H, bidirectional=True), GRU(I, H), RNN(I, H, nonlinearity="relu"), LSTM(I, H, proj_size=P)):
        params = spec.init(jax.random.key(0))
        x = jnp.zeros((T, B, I))
        assert TARGET in str(jax.make_jaxpr(spec.apply)(params, x, LENGTHS)), spec
        scan = dataclasses.replace(spec, kernel="scan")
        assert TARGET not in str(jax.make_jaxpr(scan.apply)(params, x, LENGTHS))


# (what, spec, apply keywords, the reason's words): what the kernel does not serve
DECLINED = [
    ("peephole", LSTM(I, H, peephole=True), {}, "peephole=True"),
    ("layer_norm", LSTM(I, H, layer_norm=True), {}, "layer_norm=True"),
    ("cho", GRU(I, H, variant="cho"), {}, "variant='cho'"),
    ("bfloat16", LSTM(I, H, dtype=jnp.bfloat16), {}, "float32, not bfloat16"),
    ("params_bf16", GRU(I, H, param_dtype=jnp.bfloat16), {}, "float32"),
    ("checkpoint", LSTM(I, H, checkpoint=True), {}, "checkpoint=True"),
    ("zoneout", LSTM(I, H, zoneout=0.2), {}, "wrapped"),
    ("recurrent_dropout", GRU(I, H, recurrent_dropout=0.2), dict(deterministic=False), "wrapped"),
]


@pytest.mark.parametrize("what,spec,kw,words", DECLINED, ids=[d[0] for d in DECLINED])
def test_auto_declines_with_the_reason_logged_once_and_counted(what, spec, kw, words, monkeypatch, caplog):
    monkeypatch.setattr(choice, "_DECLINED", collections.Counter())
    params = spec.init(jax.random.key(0))
    x = jnp.ones((T, B, I))
    if not kw.get("deterministic", True):
        kw = dict(kw, dropout_key=jax.random.key(1))
    with caplog.at_level(logging.WARNING, logger="rnn_jax.kernels"):
        for _ in range(2):
            assert TARGET not in str(jax.make_jaxpr(lambda p: spec.apply(p, x, **kw))(params))
    logged = [r.getMessage() for r in caplog.records if r.name == "rnn_jax.kernels"]
    assert len(logged) == 1 and words in logged[0] and "uses the scan, not 'onednn'" in logged[0], logged
    assert sum(kernels.declined().values()) >= 2  # every time, not only the first
    with pytest.raises(ValueError, match="kernel='onednn' cannot run this layer: .*" + words.replace("(", r"\(")):
        dataclasses.replace(spec, kernel="onednn").apply(params, x, **kw)


def test_a_mask_and_the_minimal_cells_are_scan_only():
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    mask = jnp.ones((B, T), bool).at[0, 2].set(False)
    with pytest.raises(ValueError, match="boolean mask"):
        unroll(cell, params, xs, mask=mask, kernel="onednn")
    assert_close(unroll(cell, params, xs, mask=mask), unroll(cell, params, xs, mask=mask, kernel="scan"), "exact")
    from rnn_jax import Stack
    spec = Stack(I, H, cell_factory="min_gru", kernel="onednn")
    with pytest.raises(ValueError, match="not 'min_gru'"):
        spec.apply(spec.init(jax.random.key(0)), jnp.ones((T, B, I)))


def test_kernels_missing_from_the_process_raise_and_auto_says_so(monkeypatch, caplog):
    spec = LSTM(I, H)
    params = spec.init(jax.random.key(0))
    x = jnp.ones((T, B, I))
    with pytest.raises(kernels.KernelUnavailable, match="cuDNN runs on a GPU backend"):
        dataclasses.replace(spec, kernel="cudnn").apply(params, x)
    with pytest.raises(ValueError, match="kernel must be one of"):
        LSTM(I, H, kernel="fast")
    reason = "rnn_jax was installed without its compiled oneDNN kernel: reinstall"
    monkeypatch.setattr(onednn_library, "unavailable_reason", lambda: reason)
    monkeypatch.setattr(choice, "_DECLINED", collections.Counter())
    with caplog.at_level(logging.WARNING, logger="rnn_jax.kernels"):
        assert TARGET not in str(jax.make_jaxpr(spec.apply)(params, x))
    assert any(reason in r.getMessage() for r in caplog.records)
    with pytest.raises(kernels.KernelUnavailable, match="installed without its compiled oneDNN kernel"):
        dataclasses.replace(spec, kernel="onednn").apply(params, x)


_SHARDED_SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from rnn_jax import GRU, LSTM
out = {}
mesh = Mesh(np.array(jax.devices()), ("data",))
for name, spec in (("lstm", LSTM(3, 5, bidirectional=True, kernel="onednn")), ("gru", GRU(3, 5, kernel="onednn"))):
    params = spec.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 4, 3))
    lengths = jnp.array([6, 2, 0, 4])
    def loss(p, x, n):
        ys, final = spec.apply(p, x, n)
        return jnp.sum(ys ** 2) + sum(jnp.sum(f) for f in jax.tree.leaves(final))
    step = jax.jit(jax.value_and_grad(loss))
    xs = jax.device_put(x, NamedSharding(mesh, P(None, "data")))
    ns = jax.device_put(lengths, NamedSharding(mesh, P("data")))
    for lens, tag in ((None, "fixed"), (ns, "var")):
        hlo = step.lower(params, xs, lens).compile().as_text()
        got, want = step(params, xs, lens), step(params, x, None if lens is None else lengths)
        out[f"{name}-{tag}"] = dict(
            gathers=[l.strip()[:160] for l in hlo.splitlines() if "all-gather" in l and "f32[6,4,3]" in l],
            shapes=sorted({l.split("custom-call(")[0].split("=", 1)[1].strip()[:60] for l in hlo.splitlines()
                           if "custom_call_target=\"rnn_jax_onednn" in l}),
            diff=max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want))))
print("RESULT " + json.dumps(out))
"""


def test_sharded_batches_run_one_call_per_device_on_its_rows():
    import json
    import os
    import subprocess
    import sys
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    for case, r in out.items():
        assert r["gathers"] == [], (case, r["gathers"])  # no device gathers the whole batch of inputs
        assert r["shapes"] and all(",2," in s or "[6,2," in s for s in r["shapes"]), (case, r["shapes"])
        assert r["diff"] < 1e-4, case  # the same loss and gradients as one device
