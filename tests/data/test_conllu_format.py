"""Tests of rnn_jax/data/conllu_format.py on hand-written CoNLL-U: words vs multiword tokens and empty nodes,
comments, every malformed-line error (file, line number and line named), and `replace_tags` changing exactly
the tag column of word lines (the real files: test_ud.py)."""

import re

import conllu
import pytest

from rnn_jax.data import conllu_format as cf


def _line(*fields):
    return "\t".join(fields)


def _word(i, form, upos="NOUN", xpos="NN", misc="_"):
    return _line(str(i), form, form.lower(), upos, xpos, "_", "0", "root", "_", misc)


# Sentence 1: a multiword token (2-3 "don't" = do + n't) and an empty node 4.1; sentence 2: no sent_id, XPOS '_'.
TEXT = "\n".join([
    "# newdoc id = doc1",
    "# sent_id = s1",
    "# text = I don't know",
    _word(1, "I", "PRON", "PRP"),
    _line("2-3", "don't", "_", "_", "_", "_", "_", "_", "_", "SpaceAfter=No"),
    _word(2, "do", "AUX", "VBP"),
    _word(3, "n't", "PART", "RB"),
    _word(4, "know", "VERB", "VB"),
    _line("4.1", "knows", "know", "VERB", "VBZ", "_", "_", "_", "4:conj", "CopyOf=4"),
    "",
    _word(1, "Hello", "INTJ", "_", misc="SpaceAfter=No"),
    _word(2, "!", "PUNCT", "_"),
    "",
    "",
])


def test_words_leave_out_multiword_tokens_empty_nodes_and_comments():
    sentences = cf.parse_conllu(TEXT, "tiny.conllu")
    assert sentences == [
        cf.TaggedSentence(("I", "do", "n't", "know"), ("PRON", "AUX", "PART", "VERB"), ("PRP", "VBP", "RB", "VB"),
                          "s1"),
        cf.TaggedSentence(("Hello", "!"), ("INTJ", "PUNCT"), ("_", "_"), None)]
    blocks = cf.sentence_blocks(TEXT, "tiny.conllu")
    assert [b.first_line for b in blocks] == [1, 11]
    assert [[t.kind for t in b.tokens] for b in blocks] == [["word", "multiword", "word", "word", "word", "empty"],
                                                            ["word", "word"]]
    assert [t.number for t in blocks[0].words()] == [4, 6, 7, 8]
    assert cf.join_blocks([b.text for b in blocks]) == TEXT  # the blocks give the text back byte for byte
    assert cf.parse_conllu("", "empty.conllu") == []


def test_required_tag_columns():
    with pytest.raises(ValueError, match=r"tiny\.conllu: line 11: word line has no XPOS tag"):
        cf.parse_conllu(TEXT, "tiny.conllu", require=("upos", "xpos"))
    no_upos = TEXT.replace(_word(4, "know", "VERB", "VB"), _word(4, "know", "_", "VB"))
    assert cf.parse_conllu(no_upos, "x", require=())[0].upos == ("PRON", "AUX", "PART", "_")
    with pytest.raises(ValueError, match=r"x: line 8: word line has no UPOS tag \('_'\): '4\\tknow"):
        cf.parse_conllu(no_upos, "x")
    with pytest.raises(ValueError, match="column must be one of"):
        cf.parse_conllu(TEXT, "x", require=("lemma",))


W1, W2, W3 = _word(1, "a"), _word(2, "b"), _word(3, "c")
MALFORMED = {  # name -> (text, bad line's number, bad line, problem)
    "nine columns": (f"{W1}\n{_line('2', 'b', 'b', 'NOUN', 'NN', '_', '1', 'dep', '_')}\n\n", 2, None,
                     "expected 10 tab-separated columns, got 9"),
    "two-space separators": (f"{W1}\n{W2.replace(chr(9), '  ')}\n\n", 2, None,
                             "expected 10 tab-separated columns, got 1"),
    "empty field": (f"{W1.replace('a', '', 1)}\n\n", 1, None, r"column 2 \(FORM\) is empty"),
    "space in UPOS": (f"{_word(1, 'a', 'NO UN')}\n\n", 1, None, r"column 4 \(UPOS\) holds a space"),
    "non-consecutive IDs": (f"{W1}\n{W3}\n\n", 2, W3, r"word ID 3 out of order \(expected 2\)"),
    "IDs from 2": (f"{W2}\n\n", 1, W2, r"word ID 2 out of order \(expected 1\)"),
    "leading zero": (f"{W1}\n{W2.replace('2', '02', 1)}\n\n", 2, None, "bad ID '02'"),
    "ID 0": (f"{_word(0, 'a')}\n\n", 1, None, "bad ID '0'"),
    "one-word range": (f"{_line('1-1', 'a', *['_'] * 8)}\n{W1}\n\n", 1, None, "must span at least two words"),
    "range after its word": (f"{W1}\n{_line('1-2', 'ab', *['_'] * 8)}\n{W2}\n\n", 2, None, "must stand just before"),
    "range past the end": (f"{_line('1-3', 'abc', *['_'] * 8)}\n{W1}\n{W2}\n\n", 1, None,
                           "ends past the sentence's last word 2"),
    "empty node out of order": (f"{W1}\n{_line('1.2', 'x', 'x', 'VERB', '_', '_', '_', '_', '_', '_')}\n\n", 2,
                                None, r"empty node 1\.2 out of order \(expected 1\.1"),
    "empty node after the wrong word": (f"{W1}\n{W2}\n{_line('1.1', 'x', 'x', 'X', *['_'] * 6)}\n\n", 3, None,
                                        "empty node 1.1 out of order"),
    "bad UPOS": (f"{_word(1, 'a', 'NN')}\n\n", 1, None, "UPOS 'NN' is not one of the 17 universal tags"),
    "comment inside a sentence": (f"{W1}\n# note\n{W2}\n\n", 2, "# note", "comment after a token line"),
    "no blank line at the end": (f"{W1}\n", 1, W1, "the last sentence is not followed by a blank line"),
    "no final newline": (f"{W1}\n\n{W1}", 3, W1, "the text must end with a newline"),
    "two blank lines": (f"{W1}\n\n\n{W1}\n\n", 3, "", "blank line that ends no sentence"),
    "whitespace-only line": (f"{W1}\n \n", 2, " ", "whitespace-only line"),
    "carriage return": (f"{W1}\r\n\r\n", 1, W1 + "\r", "carriage return"),
    "repeated sent_id": (f"# sent_id = a\n{W1}\n\n# sent_id = a\n{W1}\n\n", 4, "# sent_id = a",
                         r"sent_id 'a' repeated \(first on line 1\)"),
    "comments only": ("# sent_id = a\n\n", 2, "", "sentence has no word line"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_lines_name_the_file_the_line_number_and_the_line(name):
    text, number, line, problem = MALFORMED[name]
    line = text.split("\n")[number - 1] if line is None else line
    with pytest.raises(ValueError) as e:
        cf.parse_conllu(text, "/data/bad.conllu")
    msg = str(e.value)
    assert msg.startswith(f"/data/bad.conllu: line {number}: "), msg
    assert msg.endswith(f": {line!r}"), msg
    assert re.search(problem, msg), msg


def test_the_conllu_package_alone_lets_these_through():
    # why conllu_format checks lines itself: the package splits on runs of spaces, pads short lines,
    # and takes any ID order, without a line number in sight
    for name in ("nine columns", "two-space separators", "non-consecutive IDs", "no blank line at the end"):
        assert len(conllu.parse(MALFORMED[name][0])) == 1, name


def test_replace_tags_changes_only_the_tag_column_of_word_lines():
    out = cf.replace_tags(TEXT, [["X", "VERB", "ADV", "NOUN"], ["SYM", "SYM"]], origin="tiny.conllu")
    expected = TEXT.split("\n")
    expected[3] = _word(1, "I", "X", "PRP")
    expected[5] = _word(2, "do", "VERB", "VBP")
    expected[6] = _word(3, "n't", "ADV", "RB")
    expected[7] = _word(4, "know", "NOUN", "VB")
    expected[10] = _word(1, "Hello", "SYM", "_", misc="SpaceAfter=No")
    expected[11] = _word(2, "!", "SYM", "_")
    assert out == "\n".join(expected)  # comments, the 2-3 and 4.1 lines, blank lines and final newline as they were
    assert [s.upos for s in cf.parse_conllu(out, "out")] == [("X", "VERB", "ADV", "NOUN"), ("SYM", "SYM")]
    xpos = cf.replace_tags(TEXT, [["a", "b", "c", "d"], ["e", "f"]], column="xpos")
    assert [s.xpos for s in cf.parse_conllu(xpos, "out")] == [("a", "b", "c", "d"), ("e", "f")]
    assert [s.upos for s in cf.parse_conllu(xpos, "out")] == [s.upos for s in cf.parse_conllu(TEXT, "in")]
    gold = cf.parse_conllu(TEXT, "in")
    assert cf.replace_tags(TEXT, [s.upos for s in gold]) == TEXT


def test_replace_tags_refuses_mismatched_or_bad_predictions():
    with pytest.raises(ValueError, match=r"tiny\.conllu: predictions has 1 sentences, the text 2"):
        cf.replace_tags(TEXT, [["X"] * 4], origin="tiny.conllu")
    with pytest.raises(ValueError, match=r"sentence 0 \(sent_id 's1', line 1\) has 4 words, predictions\[0\] has 5"):
        cf.replace_tags(TEXT, [["X"] * 5, ["X"] * 2])
    with pytest.raises(ValueError, match=r"sentence 1 \(sent_id None, line 11\) has 2 words, predictions\[1\] has 1"):
        cf.replace_tags(TEXT, [["X"] * 4, ["X"]])
    for bad in ("", "_", "NO UN", "A\tB"):
        with pytest.raises(ValueError, match=r"predictions\[1\]\[0\] must be a tag without whitespace"):
            cf.replace_tags(TEXT, [["X"] * 4, [bad, "X"]], column="xpos")
    with pytest.raises(ValueError, match=r"predictions\[0\]\[2\] must be one of the 17 UPOS tags"):
        cf.replace_tags(TEXT, [["X", "X", "NN", "X"], ["X"] * 2])
    with pytest.raises(ValueError, match="column must be one of"):
        cf.replace_tags(TEXT, [["X"] * 4, ["X"] * 2], column="feats")
    with pytest.raises(ValueError, match=r"bad\.conllu: line 2: word ID 3 out of order"):
        cf.replace_tags(MALFORMED["non-consecutive IDs"][0], [["X", "X"]], origin="bad.conllu")
