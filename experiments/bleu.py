"""Corpus BLEU with sacrebleu, in the two conventions the translation and captioning results report.

* `tokenized_bleu`: the WMT16-18 multimodal papers' convention: hypotheses and references both lowercased
  and Moses-tokenised (the staged ``tok`` files), scored with ``tokenize='none', lowercase=True``;
* `detokenized_bleu`: sacrebleu's default ``13a`` tokenisation of detokenised hypotheses against the raw
  references, case-insensitive (``lowercase=True``) because the models write lowercase.

Each returns ``(score, signature)``: the signature is sacrebleu's exact description of the metric, for
results.json.
"""

from __future__ import annotations

from typing import Sequence


def _bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str) -> tuple[float, str]:
    from sacrebleu.metrics import BLEU  # imported on use: only translation and captioning need it

    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references must pair up, got {len(hypotheses)} and {len(references)}")
    metric = BLEU(tokenize=tokenize, lowercase=True, force=tokenize == "none")  # no "tokenized period" warnings
    return metric.corpus_score(list(hypotheses), [list(references)]).score, str(metric.get_signature())


def tokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """Returns ``(BLEU, signature)`` of tokenised lowercased lines against tokenised references (one each)."""
    return _bleu(hypotheses, references, "none")


def detokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """Returns ``(BLEU, signature)`` of detokenised lines against raw references, 13a, case-insensitive."""
    return _bleu(hypotheses, references, "13a")
