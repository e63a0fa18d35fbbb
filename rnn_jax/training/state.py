"""The train state and the optimiser: `TrainState`, `create_train_state`, `make_schedule`, `make_optimizer`.

A `TrainState` is a pytree whose leaves are everything a resumed run needs to continue the same curve:
the params, the optax state, the step counter and the run's base PRNG key (each step's key is
``fold_in(key, step)``, so no key is ever split and carried). The optax transformation rides along as
static metadata (not a leaf), so a jitted step sees the same transformation on every call and
checkpoints hold arrays only.

Optimisers come from plain arguments (an experiment maps its flags onto them): Adam, AdamW or SGD,
optionally with momentum or Nesterov, a learning-rate schedule, and gradient clipping by global norm
chained first, as PyTorch's ``clip_grad_norm_`` before ``optimizer.step()``.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from rnn_jax.checks import check_size


def is_typed_key(x) -> bool:
    """Returns whether `x` is a typed PRNG key array (``jax.random.key``), which is saved and placed as its
    uint32 key data (``jax.random.key_data``), not as itself."""
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear_warmup_cosine", "step")


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training, as a pytree.

    Attributes:
      params: the model's parameter pytree (nested dicts of arrays).
      opt_state: the optax state for `params` (``tx.init(params)``).
      step: int32 scalar, the number of updates applied so far.
      key: the run's base PRNG key (typed ``jax.random.key`` or raw uint32 ``[2]``); step ``s`` uses
        ``jax.random.fold_in(key, s)``. It never changes, so resuming restores the same randomness.
      tx: the optax transformation (static: not a leaf, not checkpointed).
    """

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def apply_gradients(self, grads) -> "TrainState":
        """Returns the state after one optimiser update with `grads` (a pytree shaped like params)."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(params=params, opt_state=opt_state, step=self.step + 1)


def create_train_state(params, tx: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """Returns a `TrainState` at step 0: `params`, ``tx.init(params)`` and the base `key`.

    Args:
      params: the parameter pytree.
      tx: an optax transformation, e.g. from `make_optimizer`.
      key: a PRNG key, typed (``jax.random.key(seed)``) or raw (``jax.random.PRNGKey(seed)``, uint32 [2]).
    """
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(f"tx must be an optax.GradientTransformation, got {type(tx).__name__}")
    key = jnp.asarray(key)
    is_typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not is_typed and (key.dtype != jnp.uint32 or key.ndim != 1):
        raise ValueError(f"key must be a jax.random.key or a raw uint32 key, got dtype {key.dtype}, "
                         f"shape {key.shape}")
    if is_typed and key.ndim != 0:
        raise ValueError(f"key must be a single key (shape ()), got shape {key.shape}")
    return TrainState(params=params, opt_state=tx.init(params), step=jnp.zeros((), jnp.int32), key=key, tx=tx)


def make_schedule(learning_rate: float, schedule: str = "constant", *, warmup_steps: int = 0,
                  total_steps: int | None = None, min_lr_ratio: float = 0.0, decay_start: int | None = None,
                  decay_every: int | None = None, decay_factor: float = 0.5) -> optax.Schedule:
    """Returns an optax schedule ``step -> learning rate`` (a float32 scalar).

    Schedules, after an optional linear warm-up from 0 to `learning_rate` over `warmup_steps`:

    * ``'constant'``: `learning_rate`.
    * ``'cosine'``: cosine decay from `learning_rate` to ``min_lr_ratio * learning_rate`` at `total_steps`
      (the decay spans ``total_steps - warmup_steps``), constant after.
    * ``'linear_warmup_cosine'``: ``'cosine'`` that insists on ``warmup_steps >= 1``.
    * ``'step'``: multiplied by `decay_factor` at step `decay_start` and again every `decay_every` steps
      (Zaremba et al. 2014's "halve after epoch 4, then every epoch" with ``decay_start = 4 * epoch_steps``
      and ``decay_every = epoch_steps``). Counted from step 0, warm-up included.

    Raises:
      ValueError: naming the argument, for an unknown schedule or a value out of range.
    """
    if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    check_size("warmup_steps", warmup_steps, 0)
    lr = float(learning_rate)
    if schedule == "linear_warmup_cosine" and warmup_steps < 1:
        raise ValueError(f"schedule 'linear_warmup_cosine' needs warmup_steps >= 1, got {warmup_steps}")
    if schedule in ("cosine", "linear_warmup_cosine"):
        if total_steps is None:
            raise ValueError(f"schedule {schedule!r} needs total_steps")
        check_size("total_steps", total_steps)
        if total_steps <= warmup_steps:
            raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio}")
        main = optax.cosine_decay_schedule(lr, decay_steps=total_steps - warmup_steps, alpha=min_lr_ratio)
    elif schedule == "step":
        if decay_start is None or decay_every is None:
            raise ValueError(f"schedule 'step' needs decay_start and decay_every, got decay_start="
                             f"{decay_start!r}, decay_every={decay_every!r}")
        check_size("decay_start", decay_start, 0)
        check_size("decay_every", decay_every)
        if not 0.0 < decay_factor <= 1.0:
            raise ValueError(f"decay_factor must lie in (0, 1], got {decay_factor}")

        def main(count):
            count = jnp.asarray(count)
            n_decays = jnp.where(count >= decay_start, (count - decay_start) // decay_every + 1, 0)
            return jnp.asarray(lr, jnp.float32) * jnp.asarray(decay_factor, jnp.float32) ** n_decays
    else:
        main = optax.constant_schedule(lr)

    if warmup_steps == 0:
        return main
    warmup = optax.linear_schedule(0.0, lr, warmup_steps)
    if schedule == "step":  # counted from step 0: no offset after the warm-up
        return lambda count: jnp.where(count < warmup_steps, warmup(count), main(count))
    return optax.join_schedules([warmup, main], [warmup_steps])


def make_optimizer(name: str, learning_rate: float | optax.Schedule, *, schedule: str = "constant",
                   warmup_steps: int = 0, total_steps: int | None = None, min_lr_ratio: float = 0.0,
                   decay_start: int | None = None, decay_every: int | None = None, decay_factor: float = 0.5,
                   weight_decay: float = 0.0, weight_decay_mask: Any = None, momentum: float = 0.0,
                   nesterov: bool = False, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   clip_norm: float | None = None) -> optax.GradientTransformation:
    """Returns an optax transformation: ``clip_by_global_norm(clip_norm)`` (if set), then the optimiser.

    Args:
      name: ``'adam'``, ``'adamw'`` (decoupled weight decay) or ``'sgd'`` (with optional `momentum`,
        `nesterov`, and coupled L2 `weight_decay` as PyTorch's SGD has it).
      learning_rate: the peak rate (> 0), shaped by `schedule` and the arguments that follow it (see
        `make_schedule`); or an optax schedule callable, used as is (then `schedule` must be 'constant').
      weight_decay: >= 0; only 'adamw' and 'sgd' accept a non-zero value (Adam's coupled L2 is a
        different method: use 'adamw'). `weight_decay_mask`: optax's mask (pytree of bools or callable).
      momentum, nesterov: SGD only.
      b1, b2, eps: Adam/AdamW moments.
      clip_norm: if not None (> 0), gradients are rescaled to global norm at most `clip_norm` first.

    Raises:
      ValueError: naming the argument, for an unknown name or schedule, or a value out of range.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer name must be one of {OPTIMIZERS}, got {name!r}")
    if callable(learning_rate):
        if schedule != "constant":
            raise ValueError(f"learning_rate is already a schedule; schedule must stay 'constant', got "
                             f"{schedule!r}")
        lr = learning_rate
    else:
        lr = make_schedule(learning_rate, schedule, warmup_steps=warmup_steps, total_steps=total_steps,
                           min_lr_ratio=min_lr_ratio, decay_start=decay_start, decay_every=decay_every,
                           decay_factor=decay_factor)
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if weight_decay > 0.0 and name == "adam":
        raise ValueError("weight_decay > 0 needs name='adamw' (decoupled) or 'sgd' (L2); got name='adam'")
    if name != "sgd" and (momentum != 0.0 or nesterov):
        raise ValueError(f"momentum/nesterov apply to name='sgd' only, got name={name!r}, momentum="
                         f"{momentum}, nesterov={nesterov}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov=True needs momentum > 0")
    for arg, value in (("b1", b1), ("b2", b2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{arg} must lie in [0, 1), got {value}")
    if not eps > 0.0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if clip_norm is not None and not clip_norm > 0.0:
        raise ValueError(f"clip_norm must be None or > 0, got {clip_norm}")

    if name == "adam":
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps)
    elif name == "adamw":
        opt = optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=weight_decay_mask)
    else:
        opt = optax.sgd(lr, momentum=momentum or None, nesterov=nesterov)
        if weight_decay > 0.0:
            opt = optax.chain(optax.add_decayed_weights(weight_decay, weight_decay_mask), opt)
    parts = ([optax.clip_by_global_norm(clip_norm)] if clip_norm is not None else []) + [opt]
    return optax.chain(*parts)

