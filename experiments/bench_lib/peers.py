"""The implementations timed against each other, each prepared to run one step of a `Workload`.

`prepare(peer, workload)` builds a peer's model with its own default initialisation, compiles its step
(JAX: trace, lower and compile ahead of time; PyTorch is eager, so its first call stands in), and returns
a `Prepared` whose ``call()`` runs one step and returns once the device is done. A step is a training
step (forward, loss = mean over real tokens of the squared outputs, gradients wrt all parameters, an SGD
update; JAX steps donate the parameters, as a training loop would) or, with mode='forward', the forward
pass only (PyTorch under ``torch.inference_mode()``). All peers take the same float32 inputs
``x [B, T, I]`` (batch-first) and keep float32 parameters.

Peers:

* ``rnn_jax``: the `rnn_jax.LSTM` / `GRU` / `RNN` spec; bfloat16 is the spec's ``dtype=bfloat16`` (compute)
  with float32 params. A variant ``rnn_jax:field=value,...`` overrides any spec field
  (``rnn_jax:hoist_inputs=false,unroll=2``); values are parsed by the field's type (bools: true/false,
  ints, floats; other fields take the text, ``none`` for None). Fields the row sets (sizes, layers,
  direction, batch_first) cannot be overridden. A kernel asked for by name (``rnn_jax:kernel=onednn``,
  ``rnn_jax:kernel=cudnn``) that cannot run the case here is `Unavailable`, with the kernel's reason.
* ``flax_linen`` / ``flax_nnx``: one ``RNN(OptimizedLSTMCell | GRUCell | SimpleCell)`` per layer,
  ``Bidirectional`` when asked, ``seq_lengths`` for variable lengths, ``dtype=jnp.bfloat16`` for bfloat16.
* ``torch``: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` on CUDA if available, else CPU; variable lengths run
  ``pack_padded_sequence(enforce_sorted=False)`` -> module -> ``pad_packed_sequence`` inside the step;
  bfloat16 runs under ``torch.autocast(device, torch.bfloat16)`` (float32 params); the row's note gives
  the output dtype, as CPU autocast covers LSTM but leaves GRU and RNN in float32.
* ``jax_experimental_rnn``: ``jax.experimental.rnn.lstm``, JAX's cuDNN LSTM; LSTM only and GPU only:
  anywhere else `prepare` raises `Unavailable` with the error it met.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable

from flax import linen, nnx
import jax
import jax.numpy as jnp

import rnn_jax
from rnn_jax import kernels
from experiments.bench_lib.workload import Workload

LEARNING_RATE = 1e-3
FLAX_PEERS = ("flax_linen", "flax_nnx")
SPEC_CLASSES = {"lstm": rnn_jax.LSTM, "gru": rnn_jax.GRU, "rnn": rnn_jax.RNN}
ROW_FIELDS = ("input_size", "hidden_size", "num_layers", "batch_first", "bidirectional")


class Unavailable(Exception):
    """A peer that cannot run this workload here (not installed, wrong backend, cell not offered)."""


@dataclasses.dataclass
class Prepared:
    compile_s: float  # JAX: trace + lower + compile; PyTorch: the first call
    call: Callable[[], None]  # one step, returning when the device is done
    note: str = ""


# --------------------------------------------------------------------------- peer names and variants


def _spec_fields() -> dict[str, dataclasses.Field]:
    fields = {}
    for cls in SPEC_CLASSES.values():
        fields.update({f.name: f for f in dataclasses.fields(cls)})
    return fields


def _parse_value(text: str, type_name: str, field: str, peer: str):
    low = text.strip().lower()
    if type_name.endswith("| None"):  # optional fields, e.g. hoist_inputs: bool | None
        if low == "none":
            return None
        type_name = type_name.split("|")[0].strip()
    try:
        if type_name == "bool":
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
        if type_name == "int":
            return int(low)
        if type_name == "float":
            return float(low)
    except ValueError:
        raise ValueError(f"rnn_jax spec field {field!r} takes a value of type {type_name}, got {text!r} "
                         f"in peer {peer!r}") from None
    return None if low == "none" else text.strip()


def parse_peer(name: str) -> tuple[str, dict]:
    """Returns ``(base peer, spec overrides)`` of a peer name such as ``'rnn_jax:unroll=2,checkpoint=true'``."""
    base, colon, rest = name.strip().partition(":")
    if base not in PEERS:
        raise ValueError(f"peers must be among {tuple(PEERS)} (rnn_jax also as a variant such as "
                         f"'rnn_jax:hoist_inputs=false,unroll=2'), got {name!r}")
    if not colon:
        return base, {}
    if base != "rnn_jax":
        raise ValueError(f"only rnn_jax takes spec overrides, got {name!r}")
    fields, overrides = _spec_fields(), {}
    for item in rest.split(","):
        key, eq, text = (s.strip() for s in item.partition("="))
        if not eq or not key:
            raise ValueError(f"a variant is rnn_jax:field=value,..., got item {item!r} in peer {name!r}")
        if key not in fields or key == "_":
            raise ValueError(f"unknown rnn_jax spec field {key!r} in peer {name!r}; the fields are "
                             f"{sorted(f for f in fields if f not in ROW_FIELDS and f != '_')}")
        if key in ROW_FIELDS:
            raise ValueError(f"{key!r} is set by the benchmark row, not by a variant (peer {name!r})")
        type_ = fields[key].type  # a string under `from __future__ import annotations`
        overrides[key] = _parse_value(text, type_ if isinstance(type_, str) else type_.__name__, key, name)
    return base, overrides


def check_peer(name: str, cell: str) -> None:
    """Raises ValueError if peer `name` is malformed or overrides a field the `cell` spec lacks."""
    _, overrides = parse_peer(name)
    cls = SPEC_CLASSES[cell]
    own = {f.name for f in dataclasses.fields(cls)}
    for key in overrides:
        if key not in own:
            raise ValueError(f"peer {name!r} sets {key!r}, which {cls.__name__} (cell {cell!r}) does not have")


def split_peer_list(text: str) -> list[str]:
    """Returns the peers of a comma-separated flag value; ``field=value`` items join the variant before them.

    ``'rnn_jax,rnn_jax:hoist_inputs=false,unroll=2,torch'`` -> ``['rnn_jax',
    'rnn_jax:hoist_inputs=false,unroll=2', 'torch']`` (peer names never hold '=').
    """
    peers = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if "=" in item and ":" not in item and peers and ":" in peers[-1]:
            peers[-1] += "," + item
        else:
            peers.append(item)
    return peers


# --------------------------------------------------------------------------- JAX peers


def _prepare_jax(apply: Callable, params, w: Workload) -> Prepared:
    """Returns the compiled step of ``apply(params, x [B, T, I], lengths [B] | None) -> [B, T, F]``."""
    x = jnp.asarray(w.x)
    lengths = None if w.lengths is None else jnp.asarray(w.lengths)
    T = w.x.shape[1]

    def loss_fn(p, x, lengths):
        y = jnp.square(apply(p, x, lengths).astype(jnp.float32))  # [B, T, F]
        if lengths is None:
            return jnp.mean(y)
        valid = (jnp.arange(T)[None, :] < lengths[:, None])[:, :, None]  # [B, T, 1]
        return jnp.sum(jnp.where(valid, y, 0.0)) / (jnp.sum(lengths) * y.shape[-1])

    if w.mode == "train":
        def step(p, x, lengths):
            loss, grads = jax.value_and_grad(loss_fn)(p, x, lengths)
            return jax.tree.map(lambda a, g: a - LEARNING_RATE * g, p, grads), loss
        fn = jax.jit(step, donate_argnums=0)
    else:
        fn = jax.jit(apply)
    start = time.perf_counter()
    compiled = fn.lower(params, x, lengths).compile()
    compile_s = time.perf_counter() - start
    state = {"params": params}

    def call():
        if w.mode == "train":
            state["params"], loss = jax.block_until_ready(compiled(state["params"], x, lengths))
        else:
            jax.block_until_ready(compiled(state["params"], x, lengths))

    return Prepared(compile_s, call)


def _compute_dtype(w: Workload):
    return jnp.bfloat16 if w.dtype == "bfloat16" else None


def build_rnn_jax(w: Workload, overrides: dict) -> Prepared:
    c = w.case
    kwargs = {"batch_first": True, "bidirectional": c.bidirectional, "dtype": _compute_dtype(w), **overrides}
    spec = SPEC_CLASSES[c.cell](c.size.input, c.size.hidden, c.layers, **kwargs)
    params = spec.init(jax.random.key(0))
    if spec.kernel not in ("auto", "scan"):  # a kernel by name: one that cannot run this case is unavailable
        try:
            kernels.choose(spec.kernel, spec.cell(), params[0]["forward"], checkpoint=spec.checkpoint)
        except (kernels.KernelUnavailable, ValueError) as e:
            raise Unavailable(str(e)) from None
    return _prepare_jax(lambda p, x, lengths: spec.apply(p, x, lengths)[0], params, w)


def build_flax_linen(w: Workload, overrides: dict) -> Prepared:
    del overrides
    c = w.case
    cell_cls = {"lstm": linen.OptimizedLSTMCell, "gru": linen.GRUCell, "rnn": linen.SimpleCell}[c.cell]
    rnn = lambda: linen.RNN(cell_cls(c.size.hidden, dtype=_compute_dtype(w)))
    layers = [linen.Bidirectional(rnn(), rnn()) if c.bidirectional else rnn() for _ in range(c.layers)]
    width = c.size.hidden * (2 if c.bidirectional else 1)
    keys = jax.random.split(jax.random.key(0), c.layers)
    # parameters do not depend on B or T: initialise on one step of one sequence
    params = [m.init(k, jnp.zeros((1, 1, c.size.input if i == 0 else width)))
              for i, (m, k) in enumerate(zip(layers, keys))]

    def apply(p, x, lengths):
        for m, p_layer in zip(layers, p):
            x = m.apply(p_layer, x, seq_lengths=lengths)  # [B, T, D*H]
        return x

    return _prepare_jax(apply, params, w)


def build_flax_nnx(w: Workload, overrides: dict) -> Prepared:
    del overrides
    c = w.case
    cell_cls = {"lstm": nnx.OptimizedLSTMCell, "gru": nnx.GRUCell, "rnn": nnx.SimpleCell}[c.cell]
    rngs = nnx.Rngs(0)
    width = c.size.hidden * (2 if c.bidirectional else 1)

    def layer(in_features):
        rnn = lambda: nnx.RNN(cell_cls(in_features, c.size.hidden, dtype=_compute_dtype(w), rngs=rngs), rngs=rngs)
        return nnx.Bidirectional(rnn(), rnn(), rngs=rngs) if c.bidirectional else rnn()

    # The functional split/merge inside jax.jit: the fastest way to run nnx modules under a jitted step.
    parts = [nnx.split(layer(c.size.input if i == 0 else width), nnx.Param, ...) for i in range(c.layers)]
    params = [p for _, p, _ in parts]

    def apply(p, x, lengths):
        for (graphdef, _, rest), p_layer in zip(parts, p):
            x = nnx.merge(graphdef, p_layer, rest, copy=True)(x, seq_lengths=lengths)  # [B, T, D*H]
        return x

    return _prepare_jax(apply, params, w)


def build_jax_experimental_rnn(w: Workload, overrides: dict) -> Prepared:
    del overrides
    c = w.case
    if c.cell != "lstm":
        raise Unavailable(f"jax.experimental.rnn offers an LSTM only, not {c.cell!r}")
    B, T, I, H = c.size
    D = 2 if c.bidirectional else 1
    try:
        from jax.experimental import rnn as jax_rnn  # pylint: disable=g-import-not-at-top
        weights = jax_rnn.init_lstm_weight(jax.random.key(0), I, H, c.layers, c.bidirectional)  # flat

        def apply(wt, x, lengths):
            if lengths is None:
                lengths = jnp.full((B,), T, jnp.int32)
            if w.dtype == "bfloat16":
                wt, x = wt.astype(jnp.bfloat16), x.astype(jnp.bfloat16)
            h0 = jnp.zeros((D * c.layers, B, H), x.dtype)  # [L*D, B, H]
            return jax_rnn.lstm(x, h0, h0, wt, lengths, I, H, c.layers, 0.0, c.bidirectional)[0]

        prepared = _prepare_jax(apply, weights, w)
        prepared.call()  # cuDNN errors surface on the first run: meet them here, not in the timed loop
    except Exception as e:  # pylint: disable=broad-except
        message = (str(e).strip().splitlines() or [""])[0][:160]
        raise Unavailable(f"{type(e).__name__}: {message} (needs cuDNN; JAX backend is "
                          f"{jax.default_backend()})") from e
    return prepared


# --------------------------------------------------------------------------- PyTorch


_torch_threads = [0]  # 0: every CPU this process may run on
# OMP_WAIT_POLICY for torch's OpenMP runtime (libgomp), set before torch is first imported. Default
# 'inherit' leaves torch as users run it; 'passive' (threads sleep after every parallel region) slowed
# torch's LSTM 1.5-4.4x here, so the timing loop pauses between calls instead (`timing.time_interleaved`).
_torch_omp_wait = ["inherit"]
OMP_WAIT_POLICIES = ("passive", "active", "inherit")


def set_torch_threads(threads: int) -> None:
    """Sets the intra-op threads PyTorch peers use from now on (0: all CPUs this process may run on)."""
    _torch_threads[0] = threads


def set_torch_omp_wait(policy: str) -> None:
    """Sets OMP_WAIT_POLICY for torch ('passive', 'active', or 'inherit' the environment's); effective only
    if torch is not imported yet (`torch_omp_wait` reports what torch got)."""
    if policy not in OMP_WAIT_POLICIES:
        raise ValueError(f"policy must be one of {OMP_WAIT_POLICIES}, got {policy!r}")
    _torch_omp_wait[0] = policy


def torch_omp_wait() -> str:
    """Returns the OMP_WAIT_POLICY torch's OpenMP runtime read at import ('unset' if none)."""
    return _omp_wait_at_import[0] or "unset"


_omp_wait_at_import: list = [None]


def import_torch():
    """Returns the torch module with its threads set (`set_torch_threads`), or None where not installed."""
    if "torch" not in sys.modules:
        if _torch_omp_wait[0] != "inherit":
            os.environ["OMP_WAIT_POLICY"] = _torch_omp_wait[0].upper()
        _omp_wait_at_import[0] = os.environ.get("OMP_WAIT_POLICY")
    try:
        import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(_torch_threads[0] or cpus)
    return torch


def build_torch(w: Workload, overrides: dict) -> Prepared:
    del overrides
    torch = import_torch()
    if torch is None:
        raise Unavailable("torch is not installed")
    c = w.case
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    module_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c.cell]
    model = module_cls(c.size.input, c.size.hidden, c.layers, batch_first=True,
                       bidirectional=c.bidirectional).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    x = torch.from_numpy(w.x).to(device)  # [B, T, I]
    lengths = None if w.lengths is None else torch.from_numpy(w.lengths).to(torch.int64)  # on CPU, as pack wants
    T = w.x.shape[1]
    bf16 = w.dtype == "bfloat16"
    seen = {}

    def forward():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            if lengths is None:
                y = model(x)[0]
            else:
                packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                y = torch.nn.utils.rnn.pad_packed_sequence(model(packed)[0], batch_first=True, total_length=T)[0]
        seen["dtype"] = y.dtype
        return y  # [B, T, D*H], zero at padded steps

    def call():
        if w.mode == "forward":
            with torch.inference_mode():
                forward()
        else:
            optimizer.zero_grad(set_to_none=True)
            y = forward().float().square()
            loss = y.mean() if lengths is None else y.sum() / (w.tokens * y.shape[-1])
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    call()
    compile_s = time.perf_counter() - start
    note = device
    if bf16:
        note += f"; torch.autocast(bfloat16), outputs {str(seen['dtype']).replace('torch.', '')}"
        if seen["dtype"] != torch.bfloat16:
            note += f" (autocast does not cover {module_cls.__name__} on {device}: it ran in float32)"
    return Prepared(compile_s, call, note)


PEERS = {"rnn_jax": build_rnn_jax, "flax_linen": build_flax_linen, "flax_nnx": build_flax_nnx,
         "torch": build_torch, "jax_experimental_rnn": build_jax_experimental_rnn}
DEFAULT_PEERS = tuple(PEERS)


def prepare(peer: str, w: Workload) -> Prepared:
    """Returns peer `peer` (a name from `PEERS`, or an rnn_jax variant) compiled for workload `w`.

    Raises:
      Unavailable: the peer cannot run `w` here (the message says why).
      ValueError: a malformed peer name or variant.
    """
    check_peer(peer, w.case.cell)
    base, overrides = parse_peer(peer)
    return PEERS[base](w, overrides)
