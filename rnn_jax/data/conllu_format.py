"""CoNLL-U (Universal Dependencies) text -> tagged sentences, and predicted tags written back byte for byte.

The format (universaldependencies.org/format.html): UTF-8 lines ending in LF; a sentence is zero or more
comment lines (``#``, e.g. ``# sent_id = ...``, ``# text = ...``) followed by one or more token lines, and a
blank line ends every sentence, the last one included. A token line has exactly 10 tab-separated fields
ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC, none empty (``_`` is the unspecified value), and
only FORM, LEMMA and MISC may hold spaces. Its ID is one of:

* a **word** ``1``, ``2``, ... : consecutive integers from 1 in each sentence; the words are what is tagged;
* a **multiword token** ``n-m`` (``n < m``, e.g. ``don't`` over the words ``do`` ``n't``): it stands just
  before word ``n``, ranges do not overlap and ``m`` is a word of the sentence; not a word, never tagged;
* an **empty node** ``n.k`` (enhanced graphs only): after word ``n`` (``0`` before the first word),
  ``k = 1, 2, ...`` for each ``n``; not a word, never tagged.

UPOS is one of the 17 universal tags (`UPOS_TAGS`) or ``_``. The dependency columns (HEAD, DEPREL, DEPS)
and FEATS are not checked: nothing here reads them.

The `conllu` package's token parser is too lenient to be the check: it splits a line on runs of two or more
spaces as well as on tabs, takes lines with fewer than 10 columns, strips whitespace, accepts any ID order
(and ``01.1``, ``3-3``) and reports no line numbers. So `sentence_blocks` checks every line itself and raises
`ValueError` naming the origin (the file), the 1-based line number and the line; comments are read with the
package's ``parse_comment_line`` (``# key = value`` -> ``(key, value)``).

Nothing here locates or reads a file: `rnn_jax.data.ud` reads the splits and `rnn_jax.data.tfds_builders`
prepares them (as the raw sentence blocks, `SentenceBlock.text`), both through these functions.
"""

from __future__ import annotations

import re
from typing import Iterator, NamedTuple, Sequence

from conllu.parser import parse_comment_line

COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
TAG_COLUMNS = {"upos": 3, "xpos": 4}  # column name -> 0-based field index
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
             "SCONJ", "SYM", "VERB", "X")
_UPOS = frozenset(UPOS_TAGS)
_SPACES_ALLOWED = frozenset((1, 2, 9))  # FORM, LEMMA, MISC
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"(0|[1-9][0-9]*)\.([1-9][0-9]*)")


class TaggedSentence(NamedTuple):
    """One sentence's words (multiword tokens and empty nodes left out) with their UPOS and XPOS tags (``_``
    where unspecified), all of one length, and its ``# sent_id`` (None without one)."""
    words: tuple[str, ...]
    upos: tuple[str, ...]
    xpos: tuple[str, ...]
    sent_id: str | None


class TokenLine(NamedTuple):
    """One token line: its 1-based line number, kind (``"word"``, ``"multiword"`` or ``"empty"``), 10 fields."""
    number: int
    kind: str
    fields: tuple[str, ...]


class SentenceBlock(NamedTuple):
    """One sentence as it stands in the text: the number of its first line, its lines (comments, then token
    lines; no newlines, no blank line), its token lines and its ``# sent_id`` (None without one)."""
    first_line: int
    lines: tuple[str, ...]
    tokens: tuple[TokenLine, ...]
    sent_id: str | None

    @property
    def text(self) -> str:
        """The block's lines, each ending in a newline (the closing blank line not included)."""
        return "".join(line + "\n" for line in self.lines)

    def words(self) -> list[TokenLine]:
        """Returns the word lines (`TokenLine` of kind ``"word"``), in order."""
        return [t for t in self.tokens if t.kind == "word"]


def line_error(origin: str, number: int, problem: str, line: str) -> ValueError:
    """Returns the `ValueError` for a bad line: ``"<origin>: line <number>: <problem>: <line>"`` (the line as a
    Python literal, its first 200 characters)."""
    where = f"{origin}: line {number}" if origin else f"line {number}"
    return ValueError(f"{where}: {problem}: {line[:200]!r}")


def _token_line(number: int, line: str, origin: str) -> TokenLine:
    """Returns the `TokenLine` of one non-comment, non-blank line, checking its columns and ID syntax."""
    fields = tuple(line.split("\t"))
    if len(fields) != 10:
        raise line_error(origin, number, f"expected 10 tab-separated columns, got {len(fields)}", line)
    if "" in fields:
        i = fields.index("")
        raise line_error(origin, number, f"column {i + 1} ({COLUMNS[i].upper()}) is empty (use '_')", line)
    bad = [i for i, v in enumerate(fields) if i not in _SPACES_ALLOWED and " " in v] if " " in line else None
    if bad:
        i = bad[0]
        raise line_error(origin, number, f"column {i + 1} ({COLUMNS[i].upper()}) holds a space", line)
    ident = fields[0]
    if ident.isascii() and ident.isdigit() and ident[0] != "0":
        kind = "word"
    elif _RANGE_ID.fullmatch(ident):
        kind = "multiword"
    elif _EMPTY_ID.fullmatch(ident):
        kind = "empty"
    else:
        raise line_error(origin, number, f"bad ID {ident!r} (expected n, n-m or n.k)", line)
    if kind != "multiword" and fields[3] not in _UPOS and fields[3] != "_":
        raise line_error(origin, number, f"UPOS {fields[3]!r} is not one of the 17 universal tags", line)
    return TokenLine(number, kind, fields)


class _IdOrder:
    """Checks the order of one sentence's IDs: words 1, 2, ...; ranges before their first word, not
    overlapping; empty nodes n.1, n.2, ... right after word n."""

    def __init__(self, origin: str):
        self.origin = origin
        self.next_word = 1  # the ID the next word line must have
        self.range_end, self.range_line = 0, None  # the last multiword range's end and (number, line)
        self.pending = None  # a range's start while its first word has not come yet
        self.empty_k = 0  # the last empty node's k after the current word

    def add(self, token: TokenLine, line: str) -> None:
        """Checks `token` follows the sentence's previous token lines; raises the line's ValueError if not."""
        bad = None
        if token.kind == "word":
            if int(token.fields[0]) != self.next_word:
                bad = f"word ID {token.fields[0]} out of order (expected {self.next_word})"
            self.next_word, self.pending, self.empty_k = self.next_word + 1, None, 0
        elif token.kind == "multiword":
            start, end = (int(x) for x in token.fields[0].split("-"))
            if end <= start:
                bad = f"multiword range {token.fields[0]} must span at least two words"
            elif start != self.next_word or start <= self.range_end or self.pending is not None:
                bad = f"multiword range {token.fields[0]} must stand just before word {self.next_word}'s line " \
                      "and not overlap another range"
            self.range_end, self.range_line, self.pending = end, (token.number, line), start
        else:
            n, k = (int(x) for x in token.fields[0].split("."))
            if n != self.next_word - 1 or self.pending is not None or k != self.empty_k + 1:
                bad = f"empty node {token.fields[0]} out of order (expected {self.next_word - 1}.{self.empty_k + 1} " \
                      f"after word {self.next_word - 1})"
            self.empty_k = k
        if bad:
            raise line_error(self.origin, token.number, bad, line)

    def close(self, number: int, line: str) -> None:
        """Checks the sentence (ending before line `number`) has words and every range ends at one of them."""
        if self.next_word == 1:
            raise line_error(self.origin, number, "sentence has no word line (IDs 1, 2, ...)", line)
        if self.range_end >= self.next_word:
            raise line_error(self.origin, self.range_line[0], f"multiword range ends past the sentence's last "
                             f"word {self.next_word - 1}", self.range_line[1])


def sentence_blocks(text: str, origin: str) -> list[SentenceBlock]:
    """Returns the sentences of a CoNLL-U text as `SentenceBlock` (file order), every line checked: the list
    of `iter_sentence_blocks`."""
    return list(iter_sentence_blocks(text, origin))


def iter_sentence_blocks(text: str, origin: str) -> Iterator[SentenceBlock]:
    """Yields the sentences of a CoNLL-U text as `SentenceBlock` (file order), every line checked.

    Args:
      text: the whole text of a ``.conllu`` file (``""`` holds no sentence).
      origin: where it comes from (a file path or a TFDS split), named in errors.

    Raises:
      ValueError: a malformed line (see the module docstring): a carriage return, a whitespace-only line, a
        blank line that ends no sentence, a comment after a token line, a bad column count / ID / UPOS, IDs
        out of order, a repeated ``# sent_id``, or a text that does not end with a blank line; the message
        names `origin`, the 1-based line number and the line.
    """
    lines = text.split("\n")
    if lines[-1] != "":
        raise line_error(origin, len(lines), "the text must end with a newline", lines[-1])
    seen_ids = {}
    start, tokens, sent_id, order = None, [], None, None
    for i, line in enumerate(lines[:-1]):
        number = i + 1
        if "\r" in line:
            raise line_error(origin, number, "carriage return (CoNLL-U lines end with LF only)", line)
        if line == "":
            if start is None:
                raise line_error(origin, number, "blank line that ends no sentence (one blank line after each)", line)
            order.close(number, line)
            yield SentenceBlock(start + 1, tuple(lines[start:i]), tuple(tokens), sent_id)
            start, tokens, sent_id, order = None, [], None, None
            continue
        if not line.strip():
            raise line_error(origin, number, "whitespace-only line (a blank line must be empty)", line)
        if start is None:
            start, order = i, _IdOrder(origin)
        if line.startswith("#"):
            if tokens:
                raise line_error(origin, number, "comment after a token line (comments precede a sentence)", line)
            for key, value in parse_comment_line(line):
                if key != "sent_id":
                    continue
                if sent_id is not None:
                    raise line_error(origin, number, "a second sent_id in one sentence", line)
                if value in seen_ids:
                    raise line_error(origin, number, f"sent_id {value!r} repeated (first on line {seen_ids[value]})",
                                     line)
                sent_id, seen_ids[value] = value, number
            continue
        token = _token_line(number, line, origin)
        order.add(token, line)
        tokens.append(token)
    if start is not None:
        raise line_error(origin, len(lines) - 1, "the last sentence is not followed by a blank line",
                         lines[-2])


def _check_column(column: str) -> int:
    if column not in TAG_COLUMNS:
        raise ValueError(f"column must be one of {sorted(TAG_COLUMNS)}, got {column!r}")
    return TAG_COLUMNS[column]


def parse_conllu(text: str, origin: str, *, require: Sequence[str] = ("upos",)) -> list[TaggedSentence]:
    """Returns the `TaggedSentence` of every sentence of a CoNLL-U text, in order (see `sentence_blocks`).

    Args:
      text: the whole text of a ``.conllu`` file.
      origin: where it comes from, named in errors.
      require: tag columns (``"upos"``, ``"xpos"``) that must hold a tag, not ``_``, on every word line.

    Raises:
      ValueError: a malformed line, or a word line lacking a required tag; names `origin`, the line number
        and the line.
    """
    needed = [(c, _check_column(c)) for c in require]
    out = []
    for block in iter_sentence_blocks(text, origin):  # one block at a time: fewer live objects, faster
        words = block.words()
        for name, col in needed:
            for t in words:
                if t.fields[col] == "_":
                    raise line_error(origin, t.number, f"word line has no {name.upper()} tag ('_')",
                                     "\t".join(t.fields))
        out.append(TaggedSentence(tuple(t.fields[1] for t in words), tuple(t.fields[3] for t in words),
                                  tuple(t.fields[4] for t in words), block.sent_id))
    return out


def join_blocks(blocks: Sequence[str]) -> str:
    """Returns the CoNLL-U text of sentence blocks (each a `SentenceBlock.text`): each followed by a blank
    line, so that joining a file's blocks gives the file back byte for byte."""
    return "".join(block + "\n" for block in blocks)


def _check_tag(tag, column: str, where: str) -> None:
    if not isinstance(tag, str) or tag in ("", "_") or tag != tag.strip() or any(c in tag for c in " \t\n\r"):
        raise ValueError(f"predictions{where} must be a tag without whitespace (not '' or '_'), got {tag!r}")
    if column == "upos" and tag not in _UPOS:
        raise ValueError(f"predictions{where} must be one of the 17 UPOS tags {UPOS_TAGS}, got {tag!r}")


def replace_tags(text: str, predictions: Sequence[Sequence[str]], *, column: str = "upos", origin: str = "") -> str:
    """Returns `text` with the `column` field (UPOS, column 4, or XPOS, column 5) of every word line replaced by
    the predicted tags, in order; every other byte (comments, multiword-token and empty-node lines, other
    columns, blank lines, the final newline) is kept as it was.

    Args:
      text: a CoNLL-U text (checked as in `sentence_blocks`).
      predictions: one tag sequence per sentence, ``len(predictions[s])`` = the number of words of sentence s.
      column: ``"upos"`` or ``"xpos"``; a UPOS prediction must be one of `UPOS_TAGS`.
      origin: where `text` comes from, named in errors.

    Raises:
      ValueError: a malformed `text`; a different number of sentences, or of words in a sentence (the message
        names the sentence index, its sent_id and both counts); a tag that is empty, ``_`` or holds whitespace.
    """
    col = _check_column(column)
    blocks = sentence_blocks(text, origin)
    prefix = f"{origin}: " if origin else ""
    if len(predictions) != len(blocks):
        raise ValueError(f"{prefix}predictions has {len(predictions)} sentences, the text {len(blocks)}")
    lines = text.split("\n")
    for s, (block, tags) in enumerate(zip(blocks, predictions)):
        words = block.words()
        if len(tags) != len(words):
            raise ValueError(f"{prefix}sentence {s} (sent_id {block.sent_id!r}, line {block.first_line}) has "
                             f"{len(words)} words, predictions[{s}] has {len(tags)} tags")
        for j, (token, tag) in enumerate(zip(words, tags)):
            _check_tag(tag, column, f"[{s}][{j}]")
            fields = list(token.fields)
            fields[col] = tag
            lines[token.number - 1] = "\t".join(fields)
    return "\n".join(lines)
