"""ml_collections configs, one file per task; variants by name after the file (``char_lm.py:word_small``)."""

from typing import Callable, Mapping

import ml_collections

Variant = Callable[[], ml_collections.ConfigDict]


def pick_variant(variant: str, variants: Mapping[str, Variant], default: str,
                 smoke: Callable[[ml_collections.ConfigDict], ml_collections.ConfigDict]) -> ml_collections.ConfigDict:
    """Returns the config a ``get_config(variant)`` call names: one of `variants` (or `default`), then
    shrunk by `smoke` if the comma-separated `variant` also holds ``'smoke'`` (``'word_small,smoke'``)."""
    names = [n for n in (variant or default).split(",") if n]
    base = [n for n in names if n != "smoke"] or [default]
    if len(base) > 1 or base[0] not in variants:
        raise ValueError(f"config variant must be one of {sorted(variants)}, optionally with ',smoke'; "
                         f"got {variant!r}")
    config = variants[base[0]]()
    return smoke(config) if "smoke" in names else config


def add_run_fields(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the fields every experiment's run takes (both may change when a run resumes):

    * ``micro_batches``: run each training batch as this many micro-batches, accumulating loss sums,
      counts and gradient sums into the whole batch's update (large batches on few devices; 1: off);
    * ``start_over``: discard the workdir's previous run (config, checkpoints, metrics, outputs) before
      training, instead of refusing a workdir written by another configuration.
    """
    c.micro_batches = 1
    c.start_over = False
    return c
