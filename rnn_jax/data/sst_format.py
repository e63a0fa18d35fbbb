"""Stanford Sentiment Treebank's tree format: PTB-style lines -> `Tree`, labelled phrases, SST-2 labels.

Each line of ``train/dev/test.txt`` is a binarised tree with a label 0-4 on every node, e.g.
``(3 (2 (2 The) (2 Rock)) (4 ...))``; leaves are PTB tokens (``-LRB-``, ``-RRB-`` for brackets). The
sentence is the leaves in order and its label the root's (Socher et al. 2013).

* SST-5 (fine-grained): labels 0 very negative .. 4 very positive.
* SST-2 (binary, `to_binary`): neutral (2) dropped, 0/1 -> 0 (negative), 3/4 -> 1 (positive).

Nothing here locates or reads a file: `tree_lines` takes a file's text, the rest take lines or trees
(`rnn_jax.data.sst` reads the splits, `rnn_jax.data.tfds_builders` prepares them, both through these).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

NUM_CLASSES = {False: 5, True: 2}  # by `binary`
LABEL_NAMES = {False: ("very negative", "negative", "neutral", "positive", "very positive"),
               True: ("negative", "positive")}


class Tree(NamedTuple):
    """A node of a sentiment tree: its label (0-4), its children, and its token (leaves only, else None)."""
    label: int
    children: tuple
    token: str | None = None

    def leaves(self) -> list[str]:
        """Returns the tokens under this node, left to right."""
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            if node.token is not None:
                out.append(node.token)
            else:
                stack.extend(reversed(node.children))
        return out


class SentimentExample(NamedTuple):
    """A sentence or phrase: its tokens and its label (0-4, or 0-1 for SST-2)."""
    tokens: tuple
    label: int


def tree_lines(raw: str, origin: str = "") -> list[str]:
    """Returns the tree lines (`list` of `str`, one per sentence, file order) of a tree file's text: line i of
    the list is line i of the file. Blank lines at the end (the final newline) are dropped.

    Raises:
      ValueError: a blank (or whitespace-only) line before the last tree; names `origin` and the line number.
    """
    lines = raw.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"{origin or 'text'}: line {number} is blank (one tree per line, no blank line before "
                             f"the last of {len(lines)})")
    return lines


def parse_tree(line: str) -> Tree:
    """Returns the `Tree` of one PTB-style line ``(label child child)`` / ``(label token)``.

    Raises:
      ValueError: unbalanced brackets, a missing/non-integer label or one outside 0-4, or trailing text; the
        message quotes the line (its first 80 characters).
    """
    # Split on ASCII spaces only: a few tokens hold a no-break space (``8\xa01\\/2`` in train).
    s = [item for item in line.strip().replace("(", " ( ").replace(")", " ) ").split(" ") if item]
    pos = 0

    def node() -> Tree:
        nonlocal pos
        if pos + 1 >= len(s) or s[pos] != "(":
            raise ValueError(f"expected '(' followed by a label at item {pos} of {line[:80]!r}")
        try:
            label = int(s[pos + 1])
        except ValueError:
            raise ValueError(f"expected an integer label, got {s[pos + 1]!r} in {line[:80]!r}") from None
        if not 0 <= label < NUM_CLASSES[False]:
            raise ValueError(f"label {label} is outside 0-4 in {line[:80]!r}")
        pos += 2
        if pos < len(s) and s[pos] not in ("(", ")"):  # a leaf: (label token)
            token = s[pos]
            pos += 1
            if pos >= len(s) or s[pos] != ")":
                raise ValueError(f"expected ')' after leaf {token!r} in {line[:80]!r}")
            pos += 1
            return Tree(label, (), token)
        children = []
        while pos < len(s) and s[pos] == "(":
            children.append(node())
        if pos >= len(s) or s[pos] != ")" or not children:
            raise ValueError(f"unbalanced or empty node in {line[:80]!r}")
        pos += 1
        return Tree(label, tuple(children))

    tree = node()
    if pos != len(s):
        raise ValueError(f"trailing text after the tree in {line[:80]!r}")
    return tree


def parse_trees(lines: Sequence[str], origin: str) -> list[Tree]:
    """Returns the `Tree` of every line (`list`, same order) of one split.

    Args:
      lines: tree lines (`tree_lines` of a file, or the TFDS records' trees).
      origin: where the lines come from (a file path, a TFDS split), for the error message.

    Raises:
      ValueError: a malformed line; the message names `origin`, the line's number among `lines` (1-based: the
        file's line number for `tree_lines` of a file) and quotes the line.
    """
    trees = []
    for number, line in enumerate(lines, 1):
        try:
            trees.append(parse_tree(line))
        except ValueError as e:
            raise ValueError(f"{origin}: tree line {number} is malformed: {e}") from None
    return trees


def tree_phrases(tree: Tree) -> list[SentimentExample]:
    """Returns every node of `tree` as (its leaves, its label), root first (pre-order)."""
    out = []

    def visit(node: Tree) -> tuple:
        if node.token is not None:
            span = (node.token,)
            out.append(SentimentExample(span, node.label))
            return span
        slot = len(out)
        out.append(None)  # the node precedes its children (pre-order)
        span = sum((visit(c) for c in node.children), ())
        out[slot] = SentimentExample(span, node.label)
        return span

    visit(tree)
    return out


def to_binary(label: int) -> int | None:
    """Returns the SST-2 label of a 0-4 label: 0/1 -> 0, 3/4 -> 1, neutral 2 -> None (dropped)."""
    return None if label == 2 else int(label >= 3)
