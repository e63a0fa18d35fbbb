"""Train and eval step factories, the host-side NaN/inf check and host-side metric reduction.

A loss function has the signature ``loss_fn(params, batch, key) -> (loss_sum, count, aux)``:

* ``loss_sum``: float scalar, the loss summed over the valid (unpadded) targets of the batch;
* ``count``: scalar, how many targets that sum covers (tokens, sequences, ...); never padding;
* ``aux``: a dict of further scalars, by name. Names ending in ``_sum`` are sums normalised by
  ``count`` (or by a ``<name>_count`` entry of `aux` when present) in `reduce_metrics`; names ending in
  ``_count`` are counts; anything else is a per-step value that `reduce_metrics` averages over steps.
  One name is special: ``outputs``, a pytree of per-example arrays (leading batch axis: predictions,
  labels) that evaluation hands to the host for task metrics (a confusion matrix, BLEU); training drops it.
* ``key``: the step's PRNG key when training (``jax.random.fold_in(state.key, state.step)``), ``None``
  when evaluating: ``deterministic = key is None`` is the intended reading.

The step optimises the mean ``loss_sum / count`` (times `grad_scale`), so padding never enters the
average and the gradient does not depend on how much padding a batch carries. Steps return sums and
counts, not means, so the host can reduce many steps (and uneven batches) exactly.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_jax.checks import check_size
from rnn_jax.training.accumulation import accumulate_gradients
from rnn_jax.training.state import TrainState

LossFn = Callable[[Any, Any, Any], tuple]
CarriedLossFn = Callable[[Any, Any, Any, Any], tuple]
RESERVED = ("loss_sum", "count", "grad_norm", "learning_rate")


def _check_loss_outputs(out) -> tuple:
    """Returns ``(loss_sum, count, scalars, outputs)`` of a loss's ``(loss_sum, count, aux)``, checked."""
    if not (isinstance(out, tuple) and len(out) == 3):
        raise ValueError("loss_fn must return a tuple (loss_sum, count, aux_metrics), got "
                         f"{type(out).__name__}")
    loss_sum, count, aux = out
    for name, value in (("loss_sum", loss_sum), ("count", count)):
        if jnp.shape(value) != ():
            raise ValueError(f"loss_fn's {name} must be a scalar, got shape {jnp.shape(value)}")
    if not isinstance(aux, Mapping):
        raise ValueError(f"loss_fn's aux_metrics must be a dict of scalars, got {type(aux).__name__}")
    clash = sorted(set(aux) & set(RESERVED))
    if clash:
        raise ValueError(f"loss_fn's aux_metrics may not use the reserved names {clash}")
    scalars = dict(aux)
    outputs = scalars.pop("outputs", None)  # per-example arrays for host-side metrics, not reduced
    return loss_sum, count, scalars, outputs


def _check_carried(out) -> tuple:
    if not (isinstance(out, tuple) and len(out) == 4):
        raise ValueError("a carried loss_fn must return a tuple (loss_sum, count, aux_metrics, carry), got "
                         f"{type(out).__name__} of length {len(out) if isinstance(out, tuple) else '-'}")
    return _check_loss_outputs(out[:3]), out[3]


def make_carried_train_step(loss_fn: CarriedLossFn, *, grad_scale: float = 1.0,
                            learning_rate_fn: optax.Schedule | None = None, micro_batches: int = 1) -> Callable:
    """Returns ``train_step(state, batch, carry) -> (state, metrics, carry)``, one update, not yet jitted.

    The form of `make_train_step` for state carried from batch to batch (truncated BPTT) and the one the
    training loop (`rnn_jax.training.loop`) uses: ``loss_fn(params, batch, carry, key) -> (loss_sum, count,
    aux, new_carry)``, where `carry` is the recurrent state entering the batch (None for tasks without
    one) and `new_carry` the state after it. No gradient flows into the carried state: it enters as data
    and leaves through ``stop_gradient``. Jit it with ``donate_argnums=(0, 2)``. Arguments and metrics as
    in `make_train_step`; an ``aux['outputs']`` entry (per-example arrays) is left out of the metrics.
    With ``micro_batches=k > 1`` the batch (and carry) is run as `k` micro-batches whose loss sums, counts
    and gradient sums are accumulated into one update equal to the whole batch's
    (`rnn_jax.training.accumulation`); the batch size must divide by `k` (checked at trace time).
    """
    check_size("micro_batches", micro_batches)

    def checked(params, batch, carry, key):
        (loss_sum, count, aux, _), new_carry = _check_carried(loss_fn(params, batch, carry, key))
        return loss_sum, count, aux, new_carry

    def gradients(params, batch, carry, key):
        if micro_batches > 1:
            return accumulate_gradients(checked, params, batch, carry, key, micro_batches=micro_batches,
                                        grad_scale=grad_scale)

        def objective(params):
            loss_sum, count, aux, new_carry = checked(params, batch, carry, key)
            count = jnp.asarray(count, jnp.float32)
            mean = loss_sum / jnp.maximum(count, 1.0)  # an all-padding batch gives zero, not NaN
            return mean * grad_scale, (loss_sum, count, aux, jax.lax.stop_gradient(new_carry))

        return jax.grad(objective, has_aux=True)(params)

    def train_step(state: TrainState, batch, carry):
        key = jax.random.fold_in(state.key, state.step)
        grads, (loss_sum, count, aux, new_carry) = gradients(state.params, batch, carry, key)
        metrics = {"loss_sum": jnp.asarray(loss_sum, jnp.float32), "count": count,
                   "grad_norm": optax.tree.norm(grads).astype(jnp.float32), **aux}
        if learning_rate_fn is not None:
            metrics["learning_rate"] = jnp.asarray(learning_rate_fn(state.step), jnp.float32)
        return state.apply_gradients(grads), metrics, new_carry

    return train_step


def make_carried_eval_step(loss_fn: CarriedLossFn) -> Callable:
    """Returns ``eval_step(state, batch, carry) -> (metrics, outputs, carry)``: the loss with ``key=None``.

    `loss_fn` as in `make_carried_train_step`; `metrics` holds ``loss_sum``, ``count`` and the aux scalars;
    `outputs` is the loss's ``aux['outputs']`` (None without one). Jit it without donating the state.
    """

    def eval_step(state: TrainState, batch, carry):
        (loss_sum, count, aux, outputs), new_carry = _check_carried(loss_fn(state.params, batch, carry, None))
        metrics = {"loss_sum": jnp.asarray(loss_sum, jnp.float32), "count": jnp.asarray(count, jnp.float32),
                   **aux}
        return metrics, outputs, new_carry

    return eval_step


def _without_carry(loss_fn: LossFn) -> CarriedLossFn:
    """Returns `loss_fn` in the carried form, with no carry in or out."""

    def carried(params, batch, carry, key):
        out = loss_fn(params, batch, key)
        _check_loss_outputs(out)  # names a malformed result before it is unpacked
        return (*out, None)

    return carried


def make_train_step(loss_fn: LossFn, *, grad_scale: float = 1.0,
                    learning_rate_fn: optax.Schedule | None = None, micro_batches: int = 1) -> Callable:
    """Returns ``train_step(state, batch) -> (state, metrics)``, one optimiser update, not yet jitted.

    The caller compiles it once and reuses it; donating the state lets XLA update it in place::

        train_step = jax.jit(make_train_step(loss_fn), donate_argnums=0)
        state, metrics = train_step(state, batch)      # batch: any pytree of arrays loss_fn accepts

    Under data parallelism the same function runs unchanged on a batch from `shard_batch` and a state
    from `replicate`: sums over the global batch are exact, as jit sees the whole array.

    Args:
      loss_fn: ``(params, batch, key) -> (loss_sum, count, aux)``, see the module docstring.
      grad_scale: multiplies the mean loss before differentiation (e.g. the number of time steps, for
        the per-sequence sum over time that Zaremba et al. 2014 differentiate). ``loss_sum`` is
        reported unscaled; ``grad_norm`` is the norm of the scaled gradient, the one clipping sees.
      learning_rate_fn: optional schedule; its value at the step is reported as ``learning_rate``.
      micro_batches: run the batch as this many micro-batches and accumulate their sums into one update
        equal to the whole batch's (`rnn_jax.training.accumulation`; for large batches on few devices).

    Returns:
      train_step(state: TrainState, batch) -> (TrainState with step + 1, metrics), where metrics is a
      dict of float32 scalars: ``loss_sum``, ``count``, ``grad_norm`` (global norm before clipping), the
      aux entries, and ``learning_rate`` if `learning_rate_fn` is given. Reduce them on the host with
      `reduce_metrics`, after `check_finite`.
    """
    carried = make_carried_train_step(_without_carry(loss_fn), grad_scale=grad_scale,
                                      learning_rate_fn=learning_rate_fn, micro_batches=micro_batches)

    def train_step(state: TrainState, batch):
        state, metrics, _ = carried(state, batch, None)
        return state, metrics

    return train_step


def make_eval_step(loss_fn: LossFn) -> Callable:
    """Returns ``eval_step(state, batch) -> metrics``: the loss without gradients, ``key=None``.

    Jit it as ``jax.jit(make_eval_step(loss_fn))`` (no donation: the state is reused).

    Returns:
      eval_step(state: TrainState, batch) -> dict of scalars ``loss_sum``, ``count`` and the aux entries.
    """
    carried = make_carried_eval_step(_without_carry(loss_fn))
    return lambda state, batch: carried(state, batch, None)[0]


def check_finite(metrics: Mapping[str, Any] | Sequence[Mapping[str, Any]], step: int,
                 keys: Sequence[str] = ("loss_sum", "loss", "grad_norm")) -> None:
    """Returns None if every metric of `keys` present in `metrics` is finite; raises otherwise.

    Call it on the host (one ``jax.device_get`` for all the values) and *before* saving a checkpoint,
    so that the newest checkpoint on disk always predates the divergence.

    Args:
      metrics: one step's metrics (a dict of scalars, device or host values), or a list of consecutive
        steps' metrics (e.g. everything since the last log), the last of which is step `step`.
      step: the step of `metrics` (of its last entry for a list); the error names the first bad step.
      keys: which entries to check; at least one must be present.

    Raises:
      FloatingPointError: naming the first step with a non-finite value and the values.
      ValueError: if none of `keys` is in `metrics`.
    """
    many = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    if not many:
        return
    host = jax.device_get([{k: m[k] for k in keys if k in m} for m in many])
    if not host[0]:
        raise ValueError(f"check_finite: none of {list(keys)} in metrics (keys: {sorted(many[0])})")
    for i, m in enumerate(host):
        bad = {k: float(np.asarray(v)) for k, v in m.items() if not np.isfinite(np.asarray(v))}
        if bad:
            at = int(step) - len(host) + 1 + i
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise FloatingPointError(f"non-finite {shown} at step {at}; stopping. Checkpoints saved before "
                                     f"this step are intact: resume from the last one with a lower learning "
                                     f"rate or a clip_norm.")


def reduce_metrics(metrics: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Returns one dict of Python floats reducing many steps' metrics exactly, on the host.

    Rules, by name: ``count`` and ``*_count`` are summed; ``X_sum`` becomes ``X`` = its total divided by
    the total of ``X_count`` if present, else of ``count`` (``loss_sum`` -> ``loss``, the per-target
    mean over all the steps); NaN if that total is 0; anything else (``grad_norm``,
    ``learning_rate``) is averaged over the steps.

    Args:
      metrics: a non-empty list of dicts with the same keys, e.g. train steps' metrics since the last log.

    Raises:
      ValueError: for an empty list or dicts with different keys.
    """
    if not metrics:
        raise ValueError("reduce_metrics needs at least one metrics dict, got an empty list")
    host = [jax.device_get(dict(m)) for m in metrics]
    names = set(host[0])
    for i, m in enumerate(host[1:], 1):
        if set(m) != names:
            raise ValueError(f"metrics[{i}] has keys {sorted(m)}, metrics[0] has {sorted(names)}")
    total = {k: float(np.sum([np.asarray(m[k], np.float64) for m in host])) for k in names}
    out = {}
    for k in sorted(names):
        if k == "count" or k.endswith("_count"):
            out[k] = total[k]
        elif k.endswith("_sum"):
            base = k[: -len("_sum")]
            denom_name = f"{base}_count" if f"{base}_count" in names else "count"
            if denom_name not in names:
                raise ValueError(f"metric {k!r} needs a 'count' or {base + '_count'!r} entry to be normalised")
            denom = total[denom_name]
            out[base] = total[k] / denom if denom > 0 else float("nan")
        else:
            out[k] = total[k] / len(host)
    return out
