"""Tests of rnn_jax/data/text_format.py: the tiny Shakespeare cut and PTB line decoding on hand-made text."""

from rnn_jax.data import text_format


def test_split_like_tfds_small_cases():
    assert text_format.split_like_tfds("abcdefghij0123456789") == {"train": "abcdefghij01234567",
                                                                  "validation": "8", "test": "9"}
    for n in range(0, 40):
        parts = text_format.split_like_tfds("x" * n)
        assert sum(map(len, parts.values())) == n and len(parts["train"]) == int(0.9 * n)


def test_decode_ptb_char_line():
    assert text_format.decode_ptb_char_line(" a _ < u n k > _ b \n") == "a <unk> b"
    assert text_format.decode_ptb_char_line(" ") == ""
    assert text_format.parse_ptb("a b\n c  d \n ", "word") == ["a b", "c d"]
    assert text_format.parse_ptb("a _ b \n c \n ", "char") == ["a b", "c"]


def test_parse_ptb_keeps_order_and_joins_tabs_and_runs_of_spaces():
    assert text_format.parse_ptb("", "word") == [] and text_format.parse_ptb("\n\n", "char") == []
    assert text_format.parse_ptb("z y\n\n\tx  w\t\n", "word") == ["z y", "x w"]
    assert text_format.parse_ptb(" _ a _ \n", "char") == [" a "]  # '_' at the ends is a space, not a separator
