"""Split names: TFDS's ``train`` / ``validation`` / ``test``, and the aliases the corpora's own files use.

PTB names its held-out file ``valid`` and SST ``dev``; every reader and builder accepts those (and ``val``)
and works in TFDS's names, so one split name means the same data whichever source it is read from.
"""

from __future__ import annotations

SPLITS = ("train", "validation", "test")
# the corpora's file names and the usual shorthand, so a caller can pass whatever its source calls a split
_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
            "val": "validation", "test": "test"}


def canonical_split(split: str) -> str:
    """Returns ``"train"``, ``"validation"`` or ``"test"`` (a `str` of `SPLITS`) for a split name or alias
    (valid, dev, val); ValueError for anything else."""
    try:
        return _ALIASES[split]
    except (KeyError, TypeError):
        raise ValueError(f"split must be one of train/validation/test (or valid, dev), got {split!r}") from None
