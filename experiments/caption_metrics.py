"""Caption metrics against every reference of an image: BLEU-1..4 (sacrebleu), CIDEr-D and METEOR (pycocoevalcap).

A caption set is ``hypotheses [images]`` (one generated caption each) and ``references [images][refs]`` (all
of an image's reference captions, 5 for COCO and Flickr, any number >= 1 per image). Every caption is one
line of space-separated lowercase tokens, as the captioning data's own tokenisation writes them.

* `caption_bleu`: corpus BLEU-1..4 with ``tokenize='none', lowercase=True`` (the tokenised convention of
  `experiments.bleu`), the brevity penalty against each hypothesis's closest reference length, 0-100;
* `cider_d`: pycocoevalcap's ``Cider``, which *is* CIDEr-D (Vedantam et al. 2015, sec. 5): tf-idf n-gram
  vectors for n = 1..4 with document frequencies over the references of the evaluated set, hypothesis
  n-gram counts clipped by each reference's, a Gaussian length penalty (sigma = 6), no stemming, the x10
  factor. It returns that figure as pycocoevalcap does (0-10, typically about 1); papers print it x100,
  which `caption_scores` also gives as ``cider_d_x100``;
* `meteor`: METEOR 1.5 (``-l en -norm``) through pycocoevalcap's ``Meteor``, a Java subprocess, 0-1. Without
  Java it is None with a logged warning. `meteor_scorer` keeps one JVM for several caption sets: its start,
  which loads the paraphrase table, takes seconds.

Tokenisation departs from the coco-caption toolkit on purpose: the toolkit first runs the Stanford
PTBTokenizer (another JVM), which also drops punctuation tokens; here the captions are scored as given, so
figures differ slightly from the toolkit's on the same captions. CIDEr-D's lengths are pycocoevalcap's
bigram counts (a word count minus one: the same differences for non-empty captions).
"""

from __future__ import annotations

import contextlib
import shutil
from typing import Callable, Iterator, Sequence

from absl import logging

MeteorFn = Callable[[Sequence[str], Sequence[Sequence[str]]], float]


def check_captions(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Raises ValueError unless `hypotheses [images]` and `references [images][>=1]` pair up, one line each."""
    if len(hypotheses) == 0 or len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references must pair up, one entry per image (at least one), got "
                         f"{len(hypotheses)} hypotheses and {len(references)} reference lists")
    for i, (hyp, refs) in enumerate(zip(hypotheses, references)):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"references[{i}] must be a non-empty list of captions, got {refs!r}")
        for caption in (hyp, *refs):
            if "\n" in caption or "|||" in caption:
                raise ValueError(f"captions of image {i} must be single lines without '|||', got {caption!r}")


def caption_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Returns ``{"bleu1".."bleu4": corpus BLEU-n 0-100, "signature": sacrebleu's signature}``.

    `hypotheses [images]`, `references [images][refs]`, tokenised lowercase lines. sacrebleu takes reference
    streams of equal length; an image with fewer references than the most is padded with None, which
    sacrebleu drops (an empty string would count as a reference of length 0 for the brevity penalty).
    BLEU-n for n < 4 comes from the BLEU-4 statistics by sacrebleu's own ``BLEU.compute_bleu``: a segment's
    first n match counts, its length and its closest reference length do not depend on the largest order,
    so this is exactly ``BLEU(max_ngram_order=n)``, whose signature is the same string for every n.
    """
    from sacrebleu.metrics import BLEU  # imported on use, as in experiments.bleu

    check_captions(hypotheses, references)
    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    metric = BLEU(tokenize="none", lowercase=True, force=True)  # tokenised on purpose: no warning
    bleu4 = metric.corpus_score(list(hypotheses), streams)
    scores = {}
    for n in range(1, 5):
        scores[f"bleu{n}"] = BLEU.compute_bleu(list(bleu4.counts[:n]), list(bleu4.totals[:n]), bleu4.sys_len,
                                               bleu4.ref_len, smooth_method=metric.smooth_method,
                                               max_ngram_order=n).score
    scores["signature"] = str(metric.get_signature())
    return scores


def _coco_inputs(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[dict, dict]:
    """Returns pycocoevalcap's ``(gts, res)``: ``{image: [references]}`` and ``{image: [hypothesis]}``."""
    check_captions(hypotheses, references)
    gts = {i: [ref.lower() for ref in refs] for i, refs in enumerate(references)}
    res = {i: [hyp.lower()] for i, hyp in enumerate(hypotheses)}
    return gts, res


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Returns corpus CIDEr-D on pycocoevalcap's scale (its x10 included; papers print 100 times this).

    `hypotheses [images]`, `references [images][refs]`, tokenised lowercase lines. Document frequencies come
    from these references, so the figure depends on the whole evaluated set, not on each image alone.
    """
    from pycocoevalcap.cider.cider import Cider  # imported on use: only captioning needs it

    score, _ = Cider().compute_score(*_coco_inputs(hypotheses, references))
    return float(score)


def _stop_meteor(scorer) -> None:
    """Ends `scorer`'s JVM, logs what it wrote to stderr at verbosity 1 and frees its lock for its __del__."""
    process = scorer.meteor_p
    process.kill()  # before closing stdin: flushing into the pipe of a JVM that has died would raise
    process.wait()
    chatter = process.stderr.read().decode(errors="replace").strip()
    for pipe in (process.stdin, process.stdout, process.stderr):
        with contextlib.suppress(OSError):
            pipe.close()
    if chatter:
        logging.vlog(1, "METEOR's JVM wrote on stderr: %s", chatter)
    if scorer.lock.locked():  # a compute_score that raised keeps it, and Meteor.__del__ would wait forever
        scorer.lock.release()


@contextlib.contextmanager
def meteor_scorer() -> Iterator[MeteorFn | None]:
    """Yields ``score(hypotheses, references) -> corpus METEOR 0-1`` sharing one JVM, or None without Java.

    Without ``java`` on the PATH it logs a warning and yields None. The JVM is stopped on leaving the block,
    whatever happens inside it; its stderr never reaches the console (logged at verbosity 1).
    """
    if shutil.which("java") is None:
        logging.warning("METEOR not computed: no `java` on the PATH (pycocoevalcap runs METEOR 1.5 in Java)")
        yield None
        return
    from pycocoevalcap.meteor.meteor import Meteor  # imported on use: only captioning needs it

    scorer = Meteor()

    def score(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
        gts, res = _coco_inputs(hypotheses, references)
        try:
            value, _ = scorer.compute_score(gts, res)
        except (ValueError, OSError) as err:  # a missing score line or a closed pipe: the JVM has stopped
            raise RuntimeError(f"METEOR's Java process stopped (exit code {scorer.meteor_p.poll()})") from err
        return float(value)

    try:
        yield score
    finally:
        _stop_meteor(scorer)


def meteor(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float | None:
    """Returns corpus METEOR 1.5 (0-1) of `hypotheses [images]` against `references [images][refs]`, or None
    (with a logged warning) where Java is missing. Starts and stops one JVM (seconds)."""
    with meteor_scorer() as score:
        return None if score is None else score(hypotheses, references)


def caption_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, meteor: bool = True) -> dict:
    """Returns every caption metric of `hypotheses [images]` against `references [images][refs]`.

    Keys: ``bleu1``..``bleu4`` (0-100) and ``signature`` (sacrebleu's), ``cider_d`` (pycocoevalcap's scale)
    and ``cider_d_x100`` (the papers'), and with `meteor` ``meteor`` (0-1) and ``meteor_x100``, both None
    where Java is missing. Nothing is printed: the JVM's output is logged at verbosity 1 only.
    """
    scores = caption_bleu(hypotheses, references)
    scores["cider_d"] = cider_d(hypotheses, references)
    scores["cider_d_x100"] = 100.0 * scores["cider_d"]
    if meteor:
        with meteor_scorer() as score:
            value = None if score is None else score(hypotheses, references)
        scores["meteor"] = value
        scores["meteor_x100"] = None if value is None else 100.0 * value
    return scores
