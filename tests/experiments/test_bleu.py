"""experiments.bleu: sacrebleu in the two conventions, checked on cases with known answers."""

import math

import pytest

from experiments import bleu


def test_references_against_themselves_score_100_in_both_conventions():
    refs = ["a man is riding a bike .", "zwei hunde spielen im schnee ."]
    assert bleu.tokenized_bleu(refs, refs)[0] == pytest.approx(100.0)
    assert bleu.detokenized_bleu(["A man is riding a bike."], ["a man is riding a bike."])[0] == pytest.approx(100.0)


def test_tokenized_convention_does_not_retokenise_and_ignores_case():
    # 'bike.' is one token under tokenize='none', so it does not match 'bike .'
    score, signature = bleu.tokenized_bleu(["A man rides a bike."], ["a man rides a bike ."])
    assert 0 < score < 100 and "tok:none" in signature and "case:lc" in signature
    assert bleu.tokenized_bleu(["A MAN RIDES A BIKE ."], ["a man rides a bike ."])[0] == pytest.approx(100.0)


def test_by_hand_one_sentence():
    # 4 tokens against 4 (brevity penalty 1): 1-grams 3/4, 2-grams 1/3, no 3- or 4-gram matches, which
    # sacrebleu's default 'exp' smoothing scores as 1 / (2^k * total) for the k-th order without a match
    score, _ = bleu.tokenized_bleu(["the cat sat down"], ["the cat ran down"])
    p = [3 / 4, 1 / 3, 1 / (2 * 2), 1 / (4 * 1)]
    assert score == pytest.approx(100 * math.exp(sum(math.log(x) for x in p) / 4), rel=1e-9)


def test_unpaired_lines_are_an_error():
    with pytest.raises(ValueError, match="pair up"):
        bleu.tokenized_bleu(["a"], ["a", "b"])
