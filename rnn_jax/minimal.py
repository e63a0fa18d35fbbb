"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): recurrences linear in the state,
trained with a parallel scan of O(log T) depth.

The gates depend on the input only, never on ``h``, so each step is an affine map of the state,
``h_t = a_t * h_{t-1} + b_t`` (elementwise), and affine maps compose associatively. All gates of all steps
come from one matmul (`project_inputs`); `parallel_unroll` then composes the maps with
``jax.lax.associative_scan``: O(T) work, O(log T) depth, instead of the T dependent steps of
`rnn_jax.unroll`.

Equations (``g(x) = x + 0.5`` for ``x >= 0``, else ``sigmoid(x)``: the paper's activation, which keeps
``h~`` positive so its log can be taken; it is used in both scan modes and in `step`, so all agree):

* minGRU, gate order **z, h**: ``z_t = sigmoid(x_t W_z + b_z)``, ``h~_t = g(x_t W_h + b_h)``,
  ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t``, i.e. ``a_t = 1 - z_t``, ``b_t = z_t * h~_t``.
* minLSTM, gate order **f, i, h**: ``f_t = sigmoid(x_t W_f + b_f)``, ``i_t = sigmoid(x_t W_i + b_i)``,
  ``h~_t = g(x_t W_h + b_h)``, ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)``,
  ``h_t = f'_t * h_{t-1} + i'_t * h~_t``, i.e. ``a_t = f'_t``, ``b_t = i'_t * h~_t``.

The output of each step is ``h_t``; the carry is the bare array ``h [..., H]``.

The cells are `rnn_jax.cells.Cell` tuples (kinds ``'min_gru'``, ``'min_lstm'``) with the same four
functions as the other cells, so `rnn_jax.unroll` runs them sequentially, unchanged, with the same params:
``step`` is the sequential mode (autoregressive decoding, and the reference the tests compare against).
Their ``parallel`` field is `parallel_unroll` with the cell bound, which `rnn_jax.rnn.Stack` uses in
place of ``unroll``.
Params: ``w_ih [I, G*H]`` (``x @ W``, gates concatenated on the last axis in the order above) and, with
bias, ``b_ih [G*H]``; G is 2 (minGRU) or 3 (minLSTM). There are no recurrent weights.

Scans (the cells' ``scan`` option; `parallel_unroll(..., scan=)` overrides it):

* ``'log'``, the paper's log-space scan: it runs on pairs ``(log a_t, log b_t)`` with the
  combine ``(la1, lb1) . (la2, lb2) = (la1 + la2, logaddexp(la2 + lb1, lb2))``, in log-sum-exp form,
  so the cumulative products ``prod a`` never underflow (``log A`` just grows negative) and no term is
  ever subtracted. The logs come straight from the pre-activations (``log sigmoid(u) = -softplus(-u)``;
  minLSTM's ``log f' = -softplus(log i - log f)``), never from a rounded ``sigmoid``. The paper's code
  evaluates the same quantities with Heinsen's two cumulative ops, ``a* = cumsum(log a)`` and
  ``a* + logcumsumexp(log b - a*)``; that form cancels two numbers of size ``|a*|``, which grows
  linearly in T, so its float32 error grows with T. The associative combine above never forms ``a*``
  next to ``log b`` and keeps the error flat. ``b_t > 0`` is needed (hence ``g``).
* ``'linear'``: the plain associative scan of ``(a, b)`` pairs, ``(a1, b1) . (a2, b2) =
  (a1 * a2, a2 * b1 + b2)``: no exp/log, so cheaper, and it would accept ``b_t`` of any sign.

Why ``'linear'`` is the cells' default (the language model's choice since issue 3; before issue 10
`parallel_unroll` defaulted to ``'log'``): ``'log'`` is the paper's formulation and keeps ``prod a``
representable however long the run of small gates, but in linear space it flushes to 0, which here is
harmless because every term is non-negative and nothing cancels. Measured: both match a float64 loop to
~4e-7 at T=4096 (Heinsen's form: 5e-4); on a 2-core CPU ``'linear'`` runs and compiles about 2x faster, and
neither beats the sequential `lax.scan` of `rnn_jax.unroll` there (no matmul is left in the loop, so the
scan's extra work is not repaid); the O(log T) depth is for accelerators (not measured here). XLA
compile time grows with the log2(T) scan levels (seconds for a gradient at T=10^4 on CPU).

Either scan yields ``(log) A_t = prod_{s<=t} a_s`` and ``B_t``, the state at t from ``h_0 = 0``; the state is
``h_t = A_t * h_0 + B_t``. Splitting off ``h_0`` this way (instead of the paper's prepended ``log h_0``)
admits any initial carry, zero and negative values included.

Padding (the semantics of `rnn_jax.unroll`): an invalid step gets the identity map (``a = 1, b = 0``;
in log space ``log a = 0, log b = -inf``), so the state is held and the output is zeroed; the final carry
is the state after each sequence's last token and a length-0 sequence returns its initial carry.
``reverse=True`` scans from the end (``associative_scan(reverse=True)``): the padded tail is met first
and holds the initial carry, so each sequence runs backwards within its own length, exactly as
`rnn_jax.unroll` does.

Precision: as in `rnn_jax.cells`, the matmul runs in the compute dtype ``dtype`` and everything after it
(gates, scan, carry) in ``promote(dtype, float32)``; outputs are in the compute dtype.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from rnn_jax.cells import INITIALIZERS, Cell, freeze_options
from rnn_jax.checks import check_carry, check_choice, check_floating, check_inputs, check_size
from rnn_jax.precision import acc_dtype, bcast, compute_dtype, matmul
from rnn_jax.sequence import batch_of_one, valid_steps

Array = jax.Array
Params = dict

KINDS = ("min_gru", "min_lstm")
SCANS = ("log", "linear")
OPTIONS = ("bias", "dtype", "initializer", "param_dtype", "scan")  # a wrapper's entries are not among them


# --------------------------------------------------------------------------- activation and coefficients


def g(x: Array) -> Array:
    """Returns the paper's ``g(x)``: ``x + 0.5`` for ``x >= 0``, else ``sigmoid(x)`` (continuous, > 0)."""
    return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: Array) -> Array:
    """Returns ``log g(x)`` without forming ``g``: ``log(x + 0.5)`` or ``-softplus(-x)``."""
    pos = x >= 0
    safe = jnp.where(pos, x, jnp.zeros((), x.dtype))  # keeps log's unused branch (and its gradient) finite
    return jnp.where(pos, jnp.log(safe + 0.5), -jax.nn.softplus(-x))


def _log_coeffs(kind: str, u: Array) -> tuple[Array, Array]:
    """Returns ``(log a, log b)``, each ``[..., H]``, from the pre-activations ``u [..., G*H]``."""
    if kind == "min_gru":
        uz, uh = jnp.split(u, 2, axis=-1)  # 2 x [..., H]
        log_a = -jax.nn.softplus(uz)  # log(1 - z)
        log_b = -jax.nn.softplus(-uz) + log_g(uh)  # log z + log h~
    else:
        uf, ui, uh = jnp.split(u, 3, axis=-1)  # 3 x [..., H]
        diff = jax.nn.softplus(-uf) - jax.nn.softplus(-ui)  # log i - log f
        log_a = -jax.nn.softplus(diff)  # log f' = log f - log(f + i)
        log_b = -jax.nn.softplus(-diff) + log_g(uh)  # log i' + log h~
    return log_a, log_b


def _lin_coeffs(kind: str, u: Array) -> tuple[Array, Array]:
    """Returns ``(a, b)``, each ``[..., H]``, from the pre-activations ``u [..., G*H]``."""
    if kind == "min_gru":
        uz, uh = jnp.split(u, 2, axis=-1)  # 2 x [..., H]
        z = jax.nn.sigmoid(uz)
        return jax.nn.sigmoid(-uz), z * g(uh)  # 1 - z without the rounding of 1 - sigmoid
    uf, ui, uh = jnp.split(u, 3, axis=-1)  # 3 x [..., H]
    diff = jax.nn.softplus(-uf) - jax.nn.softplus(-ui)  # log i - log f
    return jax.nn.sigmoid(-diff), jax.nn.sigmoid(diff) * g(uh)  # f / (f + i), i / (f + i) * h~


# --------------------------------------------------------------------------- cells


def _min_cell(kind: str, hidden_size: int, num_gates: int, bias: bool, initializer: str, scan: str, dtype,
              param_dtype) -> Cell:
    check_size("hidden_size", hidden_size)
    check_choice("initializer", initializer, INITIALIZERS)
    check_choice("scan", scan, SCANS)
    options = freeze_options(bias=bias, initializer=initializer, scan=scan, dtype=dtype, param_dtype=param_dtype)
    H = hidden_size
    gh = num_gates * H

    def init(key, input_size: int) -> Params:
        check_size("input_size", input_size)
        k_w, k_b = jax.random.split(key)
        if initializer == "pytorch":  # torch.nn.Linear(input_size, G*H): U(-1/sqrt(I), 1/sqrt(I))
            bound = 1.0 / math.sqrt(input_size)
            params = {"w_ih": jax.random.uniform(k_w, (input_size, gh), param_dtype, -bound, bound)}
            if bias:
                params["b_ih"] = jax.random.uniform(k_b, (gh,), param_dtype, -bound, bound)
        else:  # "jax": Glorot-uniform weights, zero biases
            params = {"w_ih": jax.nn.initializers.glorot_uniform()(k_w, (input_size, gh), param_dtype)}
            if bias:
                params["b_ih"] = jnp.zeros((gh,), param_dtype)
        return params

    def initial_carry(batch_shape=(), carry_dtype=None):
        return jnp.zeros(tuple(batch_shape) + (H,), carry_dtype or acc_dtype(dtype or param_dtype))

    def project_inputs(params, xs):
        u = matmul(xs, params["w_ih"], compute_dtype(dtype, params))  # [..., G*H]
        if bias:
            u = u + bcast(params["b_ih"], u)
        return u

    def step(params, h, proj_t):
        h_new = _sequential_step(kind, h, proj_t.astype(h.dtype))
        return h_new, h_new.astype(compute_dtype(dtype, params))

    cell = Cell(init, initial_carry, project_inputs, step, kind, H, H, num_gates, dtype, options=options)
    return cell._replace(parallel=functools.partial(parallel_unroll, cell))


def _sequential_step(kind: str, h: Array, u: Array) -> Array:
    """Returns ``h_t [..., H]`` from ``h_{t-1}`` and the pre-activations ``u [..., G*H]``.

    The paper's equations as written, in linear space: the reference the scans are tested against.
    """
    if kind == "min_gru":
        uz, uh = jnp.split(u, 2, axis=-1)  # 2 x [..., H]
        z = jax.nn.sigmoid(uz)
        return (1.0 - z) * h + z * g(uh)
    uf, ui, uh = jnp.split(u, 3, axis=-1)  # 3 x [..., H]
    f, i = jax.nn.sigmoid(uf), jax.nn.sigmoid(ui)
    return (f * h + i * g(uh)) / (f + i)


def min_gru(hidden_size: int, *, bias: bool = True, initializer: str = "pytorch", scan: str = "linear", dtype=None,
            param_dtype=jnp.float32) -> Cell:
    """Returns a minGRU cell (gate order z, h; ``w_ih [I, 2H]``); carry ``h [..., H]``.

    Args:
      hidden_size: H.
      bias: whether ``b_ih [2H]`` exists.
      initializer: ``'pytorch'`` (``torch.nn.Linear``'s U(+-1/sqrt(I)) for weights and bias) or ``'jax'``
        (Glorot-uniform weights, zero bias).
      scan: the associative scan of the cell's ``parallel`` unroll (and of `parallel_unroll` by default):
        ``'linear'`` or ``'log'``, see the module docstring.
      dtype: compute dtype of the matmul (None: the parameters').
      param_dtype: dtype of the parameters.
    """
    return _min_cell("min_gru", hidden_size, 2, bias, initializer, scan, dtype, param_dtype)


def min_lstm(hidden_size: int, *, bias: bool = True, initializer: str = "pytorch", scan: str = "linear",
             dtype=None, param_dtype=jnp.float32) -> Cell:
    """Returns a minLSTM cell (gate order f, i, h; ``w_ih [I, 3H]``); carry ``h [..., H]``.

    Args: as `min_gru` (``b_ih [3H]``).
    """
    return _min_cell("min_lstm", hidden_size, 3, bias, initializer, scan, dtype, param_dtype)


# --------------------------------------------------------------------------- parallel unroll


def _combine_log(first, second):
    """Composes two affine maps in log space: ``second`` applied after ``first``."""
    la1, lb1 = first
    la2, lb2 = second
    return la1 + la2, jnp.logaddexp(la2 + lb1, lb2)


def _combine_linear(first, second):
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def _log_states(kind: str, u: Array, v, h0, reverse: bool) -> Array:
    """Returns the states ``[T, B, H]`` by the log-space scan; ``v [T, B, 1]`` valid steps or None."""
    log_a, log_b = _log_coeffs(kind, u)  # 2 x [T, B, H]
    if v is not None:  # identity map on invalid steps: a = 1, b = 0
        log_a = jnp.where(v, log_a, jnp.zeros((), log_a.dtype))
        log_b = jnp.where(v, log_b, jnp.full((), -jnp.inf, log_b.dtype))
    log_A, log_B = jax.lax.associative_scan(_combine_log, (log_a, log_b), reverse=reverse, axis=0)
    hs = jnp.exp(log_B)  # [T, B, H], the states from h_0 = 0
    return hs if h0 is None else hs + jnp.exp(log_A) * h0[None]


def _linear_states(kind: str, u: Array, v, h0, reverse: bool) -> Array:
    """Returns the states ``[T, B, H]`` by the linear-space scan; arguments as `_log_states`."""
    a, b = _lin_coeffs(kind, u)  # 2 x [T, B, H]
    if v is not None:
        a = jnp.where(v, a, jnp.ones((), a.dtype))
        b = jnp.where(v, b, jnp.zeros((), b.dtype))
    A, hs = jax.lax.associative_scan(_combine_linear, (a, b), reverse=reverse, axis=0)
    return hs if h0 is None else hs + A * h0[None]


def parallel_unroll(cell: Cell, params, xs, lengths=None, carry=None, reverse: bool = False,
                    time_major: bool = False, *, mask=None, scan: str | None = None):
    """Returns ``(final_carry, outputs)``: a minGRU/minLSTM `cell` over `xs` by an associative scan.

    Same results as ``rnn_jax.unroll(cell, params, xs, lengths, carry, reverse, time_major)`` (up to
    float rounding) in O(log T) depth instead of T sequential steps. ``cell.parallel`` is this function
    with the cell bound.

    Args:
      cell: from `min_gru` or `min_lstm`.
      params: the cell's parameters (from ``cell.init``).
      xs: ``[B, T, I]`` (``[T, B, I]`` if time_major), or one unbatched sequence ``[T, I]``.
      lengths: optional ``[B]`` integers in ``[0, T]`` (a scalar for an unbatched sequence); step t of
        sequence b is valid iff ``t < lengths[b]``.
      carry: optional initial state ``h_0 [B, H]`` (``[H]`` unbatched); default zeros. Any sign.
      reverse: run each sequence backwards within its own length.
      time_major: layout of `xs` and the outputs.
      mask: optional boolean ``[B, T]`` (``[T, B]`` if time_major) of valid steps, instead of lengths.
      scan: ``'log'`` (log-space, log-sum-exp combine) or ``'linear'``; None (default): the cell's own
        ``scan`` option. See the module docstring.

    Returns:
      final_carry ``[B, H]``, the state after each sequence's last valid step (its initial carry if it
      has none), and outputs ``[B, T, H]`` (``[T, B, H]`` if time_major), the states, zero on invalid steps.

    Checks: as `rnn_jax.unroll`'s (dtypes, ranks and sizes at trace time; the lengths' range only when
    concrete).
    """
    if not isinstance(cell, Cell) or cell.kind not in KINDS:
        raise ValueError(f"cell must be a Cell of kind {KINDS} (from min_gru or min_lstm), got "
                         f"{getattr(cell, 'kind', type(cell).__name__)!r}")
    wrapped = sorted(set(dict(cell.options)) - set(OPTIONS))
    if wrapped:  # e.g. zoneout: the step is no longer an affine map of the state
        raise ValueError(f"cell is wrapped ({wrapped}): its step has no parallel form; use rnn_jax.unroll")
    scan = check_choice("scan", dict(cell.options).get("scan", "linear") if scan is None else scan, SCANS)
    xs = check_floating("xs", xs)
    if xs.ndim == 2:  # one unbatched sequence [T, I]
        lengths, carry, mask = batch_of_one(lengths, carry, mask)
        final, ys = parallel_unroll(cell, params, xs[None], lengths, carry, reverse, False, mask=mask, scan=scan)
        return final[0], ys[0]
    check_inputs(xs, cell.input_size(params), time_major)
    xs = xs if time_major else jnp.swapaxes(xs, 0, 1)  # [T, B, I]
    T, B = xs.shape[:2]
    valid = valid_steps(lengths, mask, T, B, time_major=time_major)  # [T, B] or None
    expected = cell.initial_carry((B,))
    h0 = None if carry is None else check_carry(carry, expected)  # [B, H]
    out_dtype = cell.compute_dtype(params)  # that of `step`'s outputs
    if T == 0:
        ys = jnp.zeros((T, B, cell.hidden_size), out_dtype)
        return (expected if h0 is None else h0), (ys if time_major else jnp.swapaxes(ys, 0, 1))
    u = cell.project_inputs(params, xs).astype(expected.dtype)  # [T, B, G*H]
    v = None if valid is None else valid[:, :, None]  # [T, B, 1]
    hs = (_log_states if scan == "log" else _linear_states)(cell.kind, u, v, h0, reverse)  # [T, B, H]
    final = hs[0] if reverse else hs[-1]  # [B, H]: padding holds the state, so the last step scanned is final
    ys = hs.astype(out_dtype)
    if v is not None:
        ys = jnp.where(v, ys, jnp.zeros((), ys.dtype))
    return final, (ys if time_major else jnp.swapaxes(ys, 0, 1))
