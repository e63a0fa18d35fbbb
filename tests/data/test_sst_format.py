"""Tests of rnn_jax/data/sst_format.py: the tree parser on hand-made trees, its errors on malformed lines,
tree lines of a file's text, and the SST-2 labels."""

import pytest

from rnn_jax.data import sst_format


def test_parse_tree_by_hand():
    tree = sst_format.parse_tree("(3 (2 (2 The) (2 Rock)) (4 (3 rocks) (2 .)))")
    assert tree.label == 3 and len(tree.children) == 2 and tree.token is None
    assert tree.leaves() == ["The", "Rock", "rocks", "."]
    assert sst_format.tree_phrases(tree) == [
        (("The", "Rock", "rocks", "."), 3), (("The", "Rock"), 2), (("The",), 2), (("Rock",), 2),
        (("rocks", "."), 4), (("rocks",), 3), ((".",), 2)]
    # tokens may hold a no-break space (train has "8\xa01\/2"); only ASCII spaces separate items
    assert sst_format.parse_tree("(1 (2 8\xa01\\/2) (1 bad))").leaves() == ["8\xa01\\/2", "bad"]


@pytest.mark.parametrize("bad", ["(3 (2 a) (2 b)", "(x (2 a))", "(2 a) (2 b)", "(2 (2 a) b)", "(2)", "2 a"])
def test_parse_tree_rejects_malformed_lines(bad):
    with pytest.raises(ValueError):
        sst_format.parse_tree(bad)


@pytest.mark.parametrize("bad,why", [
    ("(3 (2 a) (2 b)", "unbalanced or empty node"), ("(x (2 a))", "expected an integer label, got 'x'"),
    ("(2 a) (2 b)", "trailing text"), ("(2 (2 a) b)", "unbalanced or empty node"),
    ("(2)", "unbalanced or empty node"), ("2 a", "expected '\\(' followed by a label"),
    ("(2 a b)", "expected '\\)' after leaf 'a'"), ("", "expected '\\(' followed by a label"),
    ("(", "expected '\\(' followed by a label")])
def test_parse_tree_errors_say_why_and_quote_the_line(bad, why):
    with pytest.raises(ValueError, match=why) as e:
        sst_format.parse_tree(bad)
    assert repr(bad) in str(e.value)


def test_parse_tree_quotes_at_most_80_characters_of_a_long_line():
    line = "(2 " + " ".join(f"(2 w{i})" for i in range(40)) + " extra)"
    with pytest.raises(ValueError) as e:
        sst_format.parse_tree(line)
    assert repr(line[:80]) in str(e.value) and line not in str(e.value)


def test_parse_trees_names_the_origin_and_the_line_of_a_malformed_tree():
    lines = ["(3 (2 a) (4 b))", "(1 (1 c) (2 d))", "(2 (2 e) f)", "(4 g)"]
    with pytest.raises(ValueError, match=r"^dev\.txt: tree line 3 is malformed: unbalanced") as e:
        sst_format.parse_trees(lines, "dev.txt")
    assert "'(2 (2 e) f)'" in str(e.value)
    trees = sst_format.parse_trees(lines[:2] + lines[3:], "dev.txt")
    assert [t.label for t in trees] == [3, 1, 4] and trees[2].leaves() == ["g"]
    assert sst_format.parse_trees([], "empty") == []


def test_tree_lines_keep_the_file_numbering_and_refuse_a_blank_line_inside():
    assert sst_format.tree_lines("(3 (2 a) (4 b))\n(1 c)\n(2 \xa0d)\n\n") == ["(3 (2 a) (4 b))", "(1 c)", "(2 \xa0d)"]
    assert sst_format.tree_lines("") == [] and sst_format.tree_lines("\n") == []
    for raw, number in (("(3 (2 a) (4 b))\n(1 c)\n\n(2 d)\n", 3), ("  \n(1 c)\n", 1)):
        with pytest.raises(ValueError, match=rf"^dev\.txt: line {number} is blank \(one tree per line"):
            sst_format.tree_lines(raw, "dev.txt")


@pytest.mark.parametrize("label", ["5", "-1", "12"])
def test_labels_outside_0_to_4_are_refused(label):
    with pytest.raises(ValueError, match=rf"label {label} is outside 0-4 in '\(3 \({label} a\) \(2 b\)\)'"):
        sst_format.parse_tree(f"(3 ({label} a) (2 b))")


def test_to_binary():
    assert [sst_format.to_binary(x) for x in range(5)] == [0, 0, None, 1, 1]
    assert sst_format.NUM_CLASSES == {False: 5, True: 2}
    assert all(len(sst_format.LABEL_NAMES[b]) == n for b, n in sst_format.NUM_CLASSES.items())
