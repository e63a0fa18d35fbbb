"""PyTorch is the reference: specs and `rnn_jax.interop.torch` against ``torch.nn.RNN/LSTM/GRU``.

Every case builds a torch module with a seeded ``torch.Generator``, converts it with `from_torch` and runs
both on the same float32 inputs; padded batches go through torch as ``pack_padded_sequence(...,
enforce_sorted=False)`` + ``pad_packed_sequence(total_length=T)`` and through rnn_jax as ``lengths``.

Grid design (runtime budget ~2 min on 2 cores, where one XLA compile costs 0.2-2 s):

* Forward: the full product kind (RNN tanh, RNN relu, LSTM, LSTM+proj, GRU) x num_layers 1-3 x
  bidirectional x batch_first x bias x initial state x fixed/variable lengths (480 cases), run eagerly
  under ``jax.disable_jit()``: op-by-op dispatch is compiled once per primitive and shape and then shared
  by all cases, so a case costs milliseconds instead of a fresh compile.
* Jitted forward and gradients: a pairwise covering design of the same seven factors (`COVER`, 15 rows:
  every pair of factor levels occurs in some row), whose first five rows have every option on at once
  (bidirectional, 2-3 layers, initial state, variable lengths, bias) for every kind. The jitted forward
  caches one ``jax.jit(spec.apply)`` per spec. Gradients are eager; the fully-loaded LSTM+proj and GRU
  rows are also compared under ``jax.jit(jax.grad(...))``.
* Every grid above runs once per kernel (`KERNELS`: the scan and oneDNN, which `kernel='auto'` picks on
  the CPU); the other tests run 'auto'.
* Sizes 1 (batch, time, hidden, input) are swept on their own; unbatched ``[T, I]`` input, eval-mode
  dropout and the weight round trips have their own tests. Torch's inter-layer dropout in training mode
  draws its own random masks, so it is not compared.
"""

import dataclasses
import functools
import itertools
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from rnn_jax import GRU, LSTM, RNN, LSTMState  # noqa: E402
from rnn_jax.interop.torch import from_torch, load_torch_state, to_torch  # noqa: E402
from rnn_jax.kernels import onednn_library  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru")
# All different, so a swapped axis changes a shape: time, batch, input, hidden, projection.
T, B, I, H, P = 5, 3, 4, 6, 2
LENGTHS = np.array([2, 5, 1], np.int32)  # unsorted; the shortest is 1, the longest is T
# Our parameter names and torch's, for a reference mapping independent of the library's.
TORCH_NAMES = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh",
               "w_hr": "weight_hr"}

# (kind, num_layers, bidirectional, batch_first, bias, with_state, variable_lengths): pairwise covering.
COVER = [
    ("rnn_tanh", 2, True, False, True, True, True),
    ("rnn_relu", 3, True, True, True, True, True),
    ("lstm", 2, True, False, True, True, True),
    ("lstm_proj", 3, True, True, True, True, True),
    ("gru", 2, True, False, True, True, True),
    ("rnn_tanh", 1, False, True, False, False, False),
    ("rnn_relu", 2, False, False, False, False, False),
    ("lstm", 3, False, False, False, False, True),
    ("lstm_proj", 1, False, False, True, True, False),
    ("gru", 1, True, True, False, False, False),
    ("lstm", 1, False, True, False, True, False),
    ("lstm_proj", 2, False, True, False, False, False),
    ("gru", 3, False, False, True, False, False),
    ("rnn_relu", 1, False, False, False, False, True),
    ("rnn_tanh", 3, False, False, False, False, False),
]


KERNELS = ("scan", "onednn")
KERNEL = pytest.mark.parametrize("kernel", KERNELS)


def spec_for(module, kernel):
    """Returns ``(spec, params)`` of `module` with the spec's ``kernel`` set (skips if it is not built)."""
    if kernel == "onednn" and onednn_library.unavailable_reason():
        pytest.skip(onednn_library.unavailable_reason())
    spec, params = from_torch(module)
    return dataclasses.replace(spec, kernel=kernel), params


def _case_id(case):
    kind, layers, bidir, bf, bias, state, var = case
    return "-".join([kind, f"L{layers}", "bi" if bidir else "uni", "bf" if bf else "tm",
                     "bias" if bias else "nobias", "h0" if state else "zero", "var" if var else "fixed"])


def _seed(*args) -> int:
    return zlib.crc32(repr(args).encode())


def make_torch(kind, num_layers=1, *, bidirectional=False, batch_first=False, bias=True, dropout=0.0,
               input_size=I, hidden_size=H, proj_size=P, seed=0):
    """Returns a torch module of `kind` with weights drawn from a seeded generator."""
    common = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                  bidirectional=bidirectional)
    if kind in ("rnn_tanh", "rnn_relu"):
        module = torch.nn.RNN(input_size, hidden_size, nonlinearity=kind[4:], **common)
    elif kind == "gru":
        module = torch.nn.GRU(input_size, hidden_size, **common)
    else:
        module = torch.nn.LSTM(input_size, hidden_size, proj_size=proj_size if kind == "lstm_proj" else 0,
                               **common)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6, generator=gen)  # wider than torch's default, to exercise the nonlinearities
    return module


def random_state(module, batch, rng):
    """Returns a random ``h_0`` (``(h_0, c_0)`` for an LSTM) for `module`; ``batch=None``: unbatched."""
    ld = module.num_layers * (2 if module.bidirectional else 1)
    lead = (ld,) if batch is None else (ld, batch)
    h_out = module.proj_size if isinstance(module, torch.nn.LSTM) and module.proj_size else module.hidden_size
    h0 = rng.standard_normal(lead + (h_out,)).astype(np.float32)
    if isinstance(module, torch.nn.LSTM):
        return h0, rng.standard_normal(lead + (module.hidden_size,)).astype(np.float32)
    return h0


def torch_apply(module, x, lengths=None, hx=None):
    """Returns torch's ``(outputs, final)`` for tensors; padded batches go through packing."""
    if lengths is None:
        return module(x, hx)
    bf = module.batch_first
    packed = pack_padded_sequence(x, torch.as_tensor(lengths, dtype=torch.int64), batch_first=bf,
                                  enforce_sorted=False)
    out, final = module(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=bf, total_length=x.shape[1 if bf else 0])
    return out, final


def _to_torch_tree(tree, requires_grad=False):
    if tree is None:
        return None
    if isinstance(tree, tuple):
        return tuple(_to_torch_tree(t, requires_grad) for t in tree)
    return torch.tensor(tree, requires_grad=requires_grad)


def torch_forward(module, x, lengths=None, state=None):
    """Returns torch's ``(outputs, final)`` as NumPy (final: ``(h_n, c_n)`` for an LSTM)."""
    with torch.no_grad():
        out, final = torch_apply(module, torch.from_numpy(x), lengths, _to_torch_tree(state))
    final = tuple(f.numpy() for f in final) if isinstance(final, tuple) else final.numpy()
    return out.numpy(), final


def check_against_torch(kind, actual, expected):
    """Asserts our ``(outputs, final)`` equals torch's to the forward tolerance."""
    out, final = actual
    if kind.startswith("lstm"):
        assert isinstance(final, LSTMState), type(final)
        final = tuple(final)
    assert_close((out, final), expected, "forward")


def make_data(module, case, time=T, batch=B):
    """Returns ``(x, lengths, state)`` for `case`, x in the module's layout."""
    kind, _, _, batch_first, _, with_state, variable = case
    rng = np.random.default_rng(_seed("data", case))
    x = rng.standard_normal((batch, time, module.input_size) if batch_first
                            else (time, batch, module.input_size)).astype(np.float32)
    lengths = LENGTHS if variable else None
    state = random_state(module, batch, rng) if with_state else None
    return x, lengths, state


def module_for(case, **kwargs):
    kind, layers, bidir, bf, bias, _, _ = case
    return make_torch(kind, layers, bidirectional=bidir, batch_first=bf, bias=bias, seed=_seed(case), **kwargs)


@functools.lru_cache(maxsize=None)
def jitted_apply(spec):
    """Returns ``jax.jit(spec.apply)``, compiled once per spec and shape for the whole module."""
    return jax.jit(spec.apply)


# --------------------------------------------------------------------------- forward parity

FLAG = dict(argvalues=(False, True))


@pytest.mark.parametrize("variable_lengths", ids=("fixed", "var"), **FLAG)
@pytest.mark.parametrize("with_state", ids=("zero", "h0"), **FLAG)
@pytest.mark.parametrize("bias", ids=("nobias", "bias"), **FLAG)
@pytest.mark.parametrize("batch_first", ids=("tm", "bf"), **FLAG)
@pytest.mark.parametrize("bidirectional", ids=("uni", "bi"), **FLAG)
@pytest.mark.parametrize("num_layers", (1, 2, 3), ids=("L1", "L2", "L3"))
@pytest.mark.parametrize("kind", KINDS)
@KERNEL
def test_forward_matches_torch(kernel, kind, num_layers, bidirectional, batch_first, bias, with_state,
                               variable_lengths):
    case = (kind, num_layers, bidirectional, batch_first, bias, with_state, variable_lengths)
    module = module_for(case)
    spec, params = spec_for(module, kernel)
    x, lengths, state = make_data(module, case)
    with jax.disable_jit():
        actual = spec.apply(params, x, lengths, state)
    check_against_torch(kind, actual, torch_forward(module, x, lengths, state))


@pytest.mark.parametrize("case", COVER, ids=_case_id)
@KERNEL
def test_jitted_forward_matches_torch(kernel, case):
    module = module_for(case)
    spec, params = spec_for(module, kernel)
    x, lengths, state = make_data(module, case)
    actual = jitted_apply(spec)(params, x, lengths, state)
    check_against_torch(case[0], actual, torch_forward(module, x, lengths, state))


def test_jit_treats_lengths_as_data():
    """Two batches of one shape but different lengths: one trace, both equal to torch."""
    case = ("lstm_proj", 2, True, True, True, True, True)
    module = module_for(case)
    spec, params = from_torch(module)
    traces = []

    def apply(params, x, lengths, state):
        traces.append(None)
        return spec.apply(params, x, lengths, state)

    fn = jax.jit(apply)
    x, _, state = make_data(module, case)
    for lengths in (LENGTHS, np.array([4, 1, 3], np.int32)):
        check_against_torch("lstm", fn(params, x, lengths, state), torch_forward(module, x, lengths, state))
        x = x[::-1].copy()
    assert len(traces) == 1


# (kind, time, batch, hidden): (1, 1, 1) for every kind, (3, 3, 3) for most, mixed rows for the rest, so
# every pair of levels of two factors occurs (relu with hidden 1 has its own row: a dead unit is likely).
SMALL = [(kind, 1, 1, 1) for kind in KINDS] + [(kind, 3, 3, 3) for kind in KINDS[:4]] + [
    ("gru", 3, 3, 1), ("lstm", 1, 3, 3), ("lstm_proj", 3, 1, 3), ("rnn_relu", 3, 3, 1), ("gru", 1, 3, 3)]


@pytest.mark.parametrize("kind,time,batch,hidden", SMALL, ids=[f"{k}-T{t}-B{b}-H{h}" for k, t, b, h in SMALL])
def test_small_sizes_match_torch(kind, time, batch, hidden):
    """Sizes down to 1 (input size 1 throughout), two bidirectional layers, lengths and h_0."""
    # A projection needs proj_size < hidden_size: output size 1 comes from hidden 2, proj 1.
    hidden_size, proj = (max(hidden, 2), hidden - 1 or 1) if kind == "lstm_proj" else (hidden, P)
    module = make_torch(kind, 2, bidirectional=True, input_size=1, hidden_size=hidden_size, proj_size=proj,
                        seed=_seed(kind, time, batch, hidden))
    spec, params = from_torch(module)
    rng = np.random.default_rng(_seed("small", kind, time, batch, hidden))
    x = rng.standard_normal((time, batch, 1)).astype(np.float32)
    # includes a length below T for the first sequence when T > 1, and 1 when B > 1
    lengths = np.array([max(time - 1, 1), time, 1], np.int32)[:batch]
    state = random_state(module, batch, rng)
    with jax.disable_jit():
        actual = spec.apply(params, x, lengths, state)
    check_against_torch(kind, actual, torch_forward(module, x, lengths, state))


# every kind with both layouts and both initial states, in two rows whose pairing alternates
UNBATCHED = [(kind, bf, bf != (i % 2 == 1)) for i, kind in enumerate(KINDS) for bf in (False, True)]


@pytest.mark.parametrize("kind,batch_first,with_state", UNBATCHED,
                         ids=[f"{k}-{'bf' if b else 'tm'}-{'h0' if s else 'zero'}" for k, b, s in UNBATCHED])
def test_unbatched_matches_torch(kind, batch_first, with_state):
    module = make_torch(kind, 2, bidirectional=True, batch_first=batch_first, seed=_seed("unbatched", kind))
    spec, params = from_torch(module)
    rng = np.random.default_rng(_seed("unbatched", kind, batch_first, with_state))
    x = rng.standard_normal((T, I)).astype(np.float32)  # [T, I] whatever batch_first says
    state = random_state(module, None, rng) if with_state else None
    with jax.disable_jit():
        actual = spec.apply(params, x, None, state)
    check_against_torch(kind, actual, torch_forward(module, x, None, state))


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_length_matches_torch_on_the_prefix(kind):
    """An unbatched sequence with a scalar length: torch on the first `length` steps, then zeros."""
    module = make_torch(kind, 2, bidirectional=True, seed=_seed("prefix", kind))
    spec, params = from_torch(module)
    rng = np.random.default_rng(_seed("prefix", kind))
    x = rng.standard_normal((T, I)).astype(np.float32)
    state = random_state(module, None, rng)
    length = 3
    out, final = torch_forward(module, x[:length], None, state)
    out = np.concatenate([out, np.zeros((T - length, out.shape[1]), np.float32)])  # [T, 2 * H_out]
    with jax.disable_jit():
        actual = spec.apply(params, x, np.int32(length), state)
    check_against_torch(kind, actual, (out, final))


@pytest.mark.parametrize("kind", KINDS)
def test_eval_mode_dropout_matches_torch(kind):
    """``dropout=0.3`` with deterministic=True equals torch in eval mode (no dropout)."""
    case = (kind, 3, True, False, True, True, True)
    module = module_for(case, dropout=0.3).eval()
    spec, params = from_torch(module)
    assert spec.dropout == pytest.approx(0.3)
    x, lengths, state = make_data(module, case)
    with jax.disable_jit():
        actual = spec.apply(params, x, lengths, state, deterministic=True)
    check_against_torch(kind, actual, torch_forward(module, x, lengths, state))


# --------------------------------------------------------------------------- gradients


def torch_param_name(ours, layer, direction):
    return f"{TORCH_NAMES[ours]}_l{layer}" + ("_reverse" if direction == "backward" else "")


def loss_weights(module, x, lengths, state, seed):
    """Returns fixed random tensors shaped like torch's outputs and each final-state array."""
    out, final = torch_forward(module, x, lengths, state)
    rng = np.random.default_rng(seed)
    finals = final if isinstance(final, tuple) else (final,)
    return (rng.standard_normal(out.shape).astype(np.float32),
            tuple(rng.standard_normal(f.shape).astype(np.float32) for f in finals))


def torch_grads(module, x, lengths, state, weights):
    """Returns torch's gradients ``(params by torch name, x, state)`` of the weighted-sum loss."""
    w_out, w_final = weights
    module.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    hx = _to_torch_tree(state, requires_grad=True)
    out, final = torch_apply(module, xt, lengths, hx)
    finals = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.from_numpy(w_out)).sum()
    for f, w in zip(finals, w_final):
        loss = loss + (f * torch.from_numpy(w)).sum()
    loss.backward()
    g_state = None if hx is None else (tuple(h.grad.numpy() for h in hx) if isinstance(hx, tuple)
                                       else hx.grad.numpy())
    return {n: p.grad.numpy() for n, p in module.named_parameters()}, xt.grad.numpy(), g_state


def jax_grad_fn(spec, lengths, weights):
    """Returns ``grad(params, x, state)`` of the same loss for our spec."""
    w_out, w_final = weights

    def loss(params, x, state):
        out, final = spec.apply(params, x, lengths, state)
        total = jnp.sum(out * w_out)
        for f, w in zip(jax.tree.leaves(final), w_final):  # LSTMState(h, c) flattens as (h_n, c_n)
            total = total + jnp.sum(f * w)
        return total

    return jax.grad(loss, argnums=(0, 1, 2))


def check_grads(grads, expected):
    """Asserts our gradients equal torch's, parameters mapped by name (ours are transposed)."""
    g_params, g_x, g_state = grads
    t_params, t_x, t_state = expected
    mapped = {}
    for layer, layer_grads in enumerate(g_params):
        for direction, cell_grads in layer_grads.items():
            for name, g in cell_grads.items():
                tname = torch_param_name(name, layer, direction)
                mapped[tname] = np.asarray(g).T if np.ndim(g) == 2 else g
    assert sorted(mapped) == sorted(t_params), "parameters do not correspond one to one"
    assert_close(mapped, t_params, "grad")
    assert_close(g_x, t_x, "grad", "d loss / d inputs")
    if t_state is not None:
        assert_close(tuple(g_state) if isinstance(g_state, tuple) else g_state, t_state, "grad",
                     "d loss / d initial state")


@pytest.mark.parametrize("case", COVER, ids=_case_id)
@KERNEL
def test_gradients_match_torch(kernel, case):
    module = module_for(case)
    spec, params = spec_for(module, kernel)
    x, lengths, state = make_data(module, case)
    weights = loss_weights(module, x, lengths, state, _seed("weights", case))
    with jax.disable_jit():
        grads = jax_grad_fn(spec, lengths, weights)(params, x, state)
    check_grads(grads, torch_grads(module, x, lengths, state, weights))


@pytest.mark.parametrize("case", [COVER[3], COVER[4]], ids=_case_id)
@KERNEL
def test_jitted_gradients_match_torch(kernel, case):
    module = module_for(case)
    spec, params = spec_for(module, kernel)
    x, lengths, state = make_data(module, case)
    weights = loss_weights(module, x, lengths, state, _seed("weights", case))
    grads = jax.jit(jax_grad_fn(spec, lengths, weights))(params, x, state)
    check_grads(grads, torch_grads(module, x, lengths, state, weights))


# --------------------------------------------------------------------------- weight round trips

ROUND_TRIP = [  # (num_layers, bidirectional, batch_first, bias)
    (1, False, False, True), (2, True, True, False), (3, True, False, True),
]


@pytest.mark.parametrize("layers,bidir,bf,bias", ROUND_TRIP)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_round_trip_is_identity(kind, layers, bidir, bf, bias):
    module = make_torch(kind, layers, bidirectional=bidir, batch_first=bf, bias=bias,
                        dropout=0.25 * (layers > 1), seed=_seed("rt", kind, layers))
    back = to_torch(*from_torch(module))
    assert type(back) is type(module)
    for attr in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "proj_size", "nonlinearity"):
        assert getattr(back, attr, None) == getattr(module, attr, None), attr
    want, got = module.state_dict(), back.state_dict()
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert torch.equal(got[name], want[name]), name


def _spec(kind, **kwargs):
    if kind in ("rnn_tanh", "rnn_relu"):
        return RNN(I, H, nonlinearity=kind[4:], **kwargs)
    if kind == "gru":
        return GRU(I, H, **kwargs)
    return LSTM(I, H, proj_size=P if kind == "lstm_proj" else 0, **kwargs)


SPEC_OPTIONS = [dict(num_layers=2, bidirectional=True, bias=False, batch_first=True, dropout=0.25),
                dict(num_layers=3, bidirectional=True)]


@pytest.mark.parametrize("options", SPEC_OPTIONS, ids=("L2-bi-nobias-bf-drop", "L3-bi"))
@pytest.mark.parametrize("kind", KINDS)
def test_spec_round_trip_is_identity(kind, options):
    spec = _spec(kind, **options)
    params = spec.init(jax.random.key(_seed("spec", kind) % 2**31))
    spec2, params2 = from_torch(to_torch(spec, params))
    assert spec2 == spec
    assert hash(spec2) == hash(spec)  # specs are jit static arguments and cache keys
    assert jax.tree.structure(params2) == jax.tree.structure(params)
    for got, want in zip(jax.tree.leaves(params2), jax.tree.leaves(params)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("spec,option", [
    (LSTM(I, H, peephole=True), "peephole=True"),
    (LSTM(I, H, layer_norm=True), "layer_norm=True"),
    (GRU(I, H, variant="cho"), "variant"),
], ids=("peephole", "layer_norm", "gru_cho"))
def test_to_torch_rejects_options_torch_lacks(spec, option):
    params = spec.init(jax.random.key(0))
    with pytest.raises(ValueError, match=option) as info:
        to_torch(spec, params)
    if option == "variant":
        assert "cho" in str(info.value)


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="Linear"):
        from_torch(torch.nn.Linear(I, H))


def test_to_torch_checks_the_number_of_layers():
    spec = LSTM(I, H, num_layers=2)
    with pytest.raises(ValueError, match="2 layers"):
        to_torch(spec, spec.init(jax.random.key(0))[:1])


def test_covering_design_is_pairwise():
    """Every pair of factor levels of the forward grid occurs in some row of COVER."""
    levels = [KINDS, (1, 2, 3)] + [(False, True)] * 5
    seen = {(i, r[i], j, r[j]) for r in COVER for i, j in itertools.combinations(range(7), 2)}
    for i, j in itertools.combinations(range(7), 2):
        for a, b in itertools.product(levels[i], levels[j]):
            assert (i, a, j, b) in seen, (i, a, j, b)


def test_to_torch_reads_any_stacks_cell_record():
    """A generic Stack of a torch-compatible cell converts (its cell's kind and options decide)."""
    from rnn_jax import Stack
    stack = Stack(I, H, 2, cell_factory="lstm", cell_options={"proj_size": P}, bidirectional=True)
    params = stack.init(jax.random.key(0))
    module = to_torch(stack, params)
    assert isinstance(module, torch.nn.LSTM) and module.proj_size == P
    x = np.asarray(jax.random.normal(jax.random.key(1), (5, 2, I)))
    with torch.no_grad():
        want = module(torch.tensor(x))[0].numpy()
    assert_close(stack.apply(params, x)[0], want)
    with pytest.raises(ValueError, match="no 'min_gru' cell"):
        to_torch(Stack(I, H, cell_factory="min_gru"), Stack(I, H, cell_factory="min_gru").init(jax.random.key(0)))
    with pytest.raises(TypeError, match="Stack"):
        to_torch("lstm", params)


class _Payload:
    """Unpickling it would create a folder: a stand-in for a checkpoint that runs code when loaded."""

    def __init__(self, folder):
        self.folder = str(folder)

    def __reduce__(self):
        return os.mkdir, (self.folder,)


def test_load_torch_state_reads_weights_only_and_refuses_a_pickled_object(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    torch.save(module.state_dict(), tmp_path / "lstm.pt")
    fresh = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    fresh.load_state_dict(load_torch_state(tmp_path / "lstm.pt"))
    for a, b in zip(jax.tree.leaves(from_torch(fresh)[1]), jax.tree.leaves(from_torch(module)[1])):
        np.testing.assert_array_equal(a, b)
    ran = tmp_path / "ran"
    torch.save({"weight_ih_l0": torch.ones(2), "extra": _Payload(ran)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt: refused by torch\.load\(weights_only=True\), so not loaded"):
        load_torch_state(tmp_path / "evil.pt")
    assert not ran.exists()  # the object was never built
    torch.save(torch.ones(3), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match=r"bare\.pt: expected a state dict \(parameter names -> tensors\), got Tensor"):
        load_torch_state(tmp_path / "bare.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match=r"text\.pt: refused by torch\.load"):
        load_torch_state(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError, match="no PyTorch weights at"):
        load_torch_state(tmp_path / "missing.pt")
