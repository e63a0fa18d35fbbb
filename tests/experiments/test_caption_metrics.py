"""experiments.caption_metrics: BLEU-n, CIDEr-D and METEOR checked on cases with answers computed by hand."""

import math
import shutil
import subprocess
import threading

import pytest
from sacrebleu.metrics import BLEU

from experiments import caption_metrics


def test_references_against_themselves_score_bleu_100_with_any_number_of_references():
    refs = [["a man rides a horse on a beach", "a person on a horse", "a rider and a horse by the sea"],
            ["two dogs play in the snow"],
            ["a red bus on a city street at night", "a bus drives down a street"]]
    scores = caption_metrics.caption_bleu([r[0] for r in refs], refs)
    for n in range(1, 5):
        assert scores[f"bleu{n}"] == pytest.approx(100.0)
    assert "nrefs:var" in scores["signature"] and "tok:none" in scores["signature"]


def test_bleu_1_and_2_by_hand_with_two_references_and_a_missing_one():
    hyps = ["the the cat", "a"]
    refs = [["the cat sat on a mat", "a cat sat down"], ["a dog"]]
    # image 1: 'the' x2 clipped to 1 (at most once in either reference) + 'cat' = 2 of 3 unigrams,
    #   'the cat' 1 of 2 bigrams; reference lengths 6 and 4, the closest to 3 is 4.
    # image 2: 'a' 1 of 1 unigram, no bigram; its one reference has length 2 (padding must not add a
    #   length-0 reference, which would tie with 2 and win as the shorter).
    # corpus: p1 = 3/4, p2 = 1/2, hypothesis length 4 against reference length 4 + 2 = 6.
    bp = math.exp(1 - 6 / 4)
    scores = caption_metrics.caption_bleu(hyps, refs)
    assert scores["bleu1"] == pytest.approx(100 * bp * 3 / 4, rel=1e-12)
    assert scores["bleu2"] == pytest.approx(100 * bp * math.sqrt(3 / 4 * 1 / 2), rel=1e-12)


def test_bleu_n_equals_sacrebleu_with_that_largest_order():
    hyps = ["a dog runs on the grass", "the cat sat", "two men play a game of cards", "a"]
    refs = [["a dog runs across the grass", "a brown dog on grass"], ["the cat sat on the mat"],
            ["two men are playing cards", "men play a card game at a table", "two people play cards"], ["a b"]]
    scores = caption_metrics.caption_bleu(hyps, refs)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(3)]
    for n in range(1, 5):
        metric = BLEU(tokenize="none", lowercase=True, max_ngram_order=n)
        assert scores[f"bleu{n}"] == metric.corpus_score(hyps, streams).score
        assert scores["signature"] == str(metric.get_signature())


def test_cider_d_by_hand_on_two_images():
    hyps = ["dog dog runs", "a cat"]
    refs = [["a dog runs", "a dog"], ["a cat"]]
    # Two images: idf = log 2 - log(df). 'a' is in both images' references: idf 0. Every other n-gram of
    # these captions has df 1 or 0 (an unseen n-gram counts as df 1): idf L = log 2, common to all, so it
    # cancels in each cosine; vectors below are counts times idf, clipped by the reference's counts.
    # image 1, against 'a dog runs' (same length: penalty 1):
    #   n=1: hyp {dog: 2, runs: 1}, ref {a: 0, dog: 1, runs: 1}: min(2,1)*1 + 1*1 = 2 over sqrt(5)*sqrt(2)
    #   n=2: hyp {dog dog, dog runs}, ref {a dog, dog runs}: 1 over sqrt(2)*sqrt(2); n=3: disjoint; n=4: none
    # against 'a dog' (length 2, one word shorter: penalty exp(-1 / (2 * 6^2))):
    #   n=1: ref {a: 0, dog: 1}: min(2,1)*1 = 1 over sqrt(5)*1; n=2: 'a dog' not in hyp; n=3, 4: none
    # per image: 10 * mean over n=1..4 of the sum over references, divided by the number of references.
    image1 = 10 * ((2 / math.sqrt(10) + 1 / 2) + math.exp(-1 / 72) / math.sqrt(5)) / 4 / 2
    image2 = 10 * (1 + 1 + 0 + 0) / 4 / 1  # 'a cat' both ways: n=1 (only 'cat' weighs) and n=2 match
    assert caption_metrics.cider_d(hyps, refs) == pytest.approx((image1 + image2) / 2, rel=1e-12)


def test_cider_d_identical_captions_score_above_disjoint_ones_and_case_is_ignored():
    refs = [["a man rides a horse"], ["two dogs play in the snow"], ["a bus on a street"]]
    same = caption_metrics.cider_d([r[0] for r in refs], refs)
    disjoint = caption_metrics.cider_d(["green", "blue", "red"], refs)
    assert disjoint == 0.0 and same > 1.0
    assert caption_metrics.cider_d([r[0].upper() for r in refs], refs) == same


def test_caption_scores_without_meteor_have_both_cider_scales_and_print_nothing(capfd):
    refs = [["a man rides a horse", "a person on a horse"], ["two dogs play in the snow"]]
    scores = caption_metrics.caption_scores(["a man on a horse", "dogs in snow"], refs, meteor=False)
    assert set(scores) == {"bleu1", "bleu2", "bleu3", "bleu4", "signature", "cider_d", "cider_d_x100"}
    assert scores["cider_d_x100"] == pytest.approx(100 * scores["cider_d"])
    assert capfd.readouterr() == ("", "")


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR is a Java program")
def test_meteor_is_one_for_a_reference_and_zero_for_disjoint_words_in_one_quiet_jvm(capfd, monkeypatch):
    from pycocoevalcap.meteor import meteor as coco_meteor

    started = []

    class Recorded(coco_meteor.Meteor):
        def __init__(self):
            super().__init__()
            started.append(self.meteor_p)

    monkeypatch.setattr(coco_meteor, "Meteor", Recorded)
    refs = [["a man rides a horse on the beach", "a person riding a horse"], ["two dogs play in the snow"]]
    with caption_metrics.meteor_scorer() as score:
        same = score([r[0] for r in refs], refs)
        disjoint = score(["green table", "blue chair"], refs)
    assert same == pytest.approx(1.0, abs=1e-6) and disjoint == pytest.approx(0.0, abs=1e-6)
    assert len(started) == 1 and started[0].returncode is not None  # one JVM, stopped on leaving the block
    assert capfd.readouterr() == ("", "")


def test_meteor_without_java_is_none_with_a_warning(monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    warnings = []
    monkeypatch.setattr(caption_metrics.logging, "warning", lambda msg, *args: warnings.append(msg % args))
    assert caption_metrics.meteor(["a dog"], [["a dog"]]) is None
    scores = caption_metrics.caption_scores(["a dog"], [["a dog"]])
    assert scores["meteor"] is None and scores["meteor_x100"] is None
    assert len(warnings) == 2 and all("java" in w for w in warnings)


def test_a_jvm_that_stops_mid_score_is_a_runtime_error_and_is_cleaned_up(monkeypatch):
    from pycocoevalcap.meteor import meteor as coco_meteor

    class Dying:  # what Meteor does when its JVM has died: its lock taken, then no score line to parse
        def __init__(self):
            self.meteor_p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)
            self.lock = threading.Lock()
            started.append(self)

        def compute_score(self, gts, res):
            self.lock.acquire()
            return float(b""), []

    started = []
    monkeypatch.setattr(coco_meteor, "Meteor", Dying)
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(RuntimeError, match="stopped"):
        caption_metrics.meteor(["a dog"], [["a dog"]])
    (scorer,) = started
    assert scorer.meteor_p.returncode is not None and not scorer.lock.locked()


@pytest.mark.parametrize("hyps, refs, match", [
    (["a"], [["a"], ["b"]], "pair up"),
    ([], [], "pair up"),
    (["a", "b"], [["a"], []], r"references\[1\]"),
    (["a"], ["a"], r"references\[0\]"),
    (["a\nb"], [["a"]], "single lines"),
    (["a"], [["a ||| b"]], "single lines"),
])
def test_malformed_caption_sets_are_errors(hyps, refs, match):
    with pytest.raises(ValueError, match=match):
        caption_metrics.caption_scores(hyps, refs, meteor=False)
