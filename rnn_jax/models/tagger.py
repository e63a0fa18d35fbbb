"""A sequence tagger (one label per token): word embeddings plus a character bi-LSTM per word, a stacked
bidirectional recurrent encoder over the sentence, a per-token softmax (Plank et al. 2016's tagger).

Each word is represented by ``[e_w ; h_fwd ; h_bwd]``: its embedding (a vocabulary of training words;
unknown words share one id) and the final states of a bidirectional recurrent pass over its characters
(forward after the last character, backward after the first), so an unseen word still gets a
representation from its spelling. The sentence encoder reverses each sentence within its own length
(`rnn_jax.rnn.Stack`), and the loss and accuracy are masked sums over real tokens.

Inputs of one batch (the data side builds them, `rnn_jax.data.tagging`):

* ``words [B, T]`` int word ids, ``lengths [B]`` words per sentence (>= 1 for a real sentence);
* ``chars [B, T, C]`` int character ids of each word, ``char_lengths [B, T]`` (0 at padded positions);
* ``tags [B, T]`` int gold tags and ``mask [B, T]`` (1.0 on real tokens) for the loss.

Checks (`_check_inputs`, at trace time): ids integer of those shapes, lengths integer; only when concrete:
word ids in ``[0, Vw)``, character ids in ``[0, Vc)``, ``lengths`` in ``[0, T]`` and ``char_lengths`` in
``[0, C]``. A length-0 sentence (a padding row) gets the output bias at every position; B = 0, T = 0 and
C = 0 give empty or bias-only logits.

`apply` runs a batch; `apply_one` runs one sentence (no batch axis) so ``jax.vmap`` can batch it (the
lecture's auto-batching); both give the same logits, as padding never reaches a real token.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rnn_jax import dropout as dropout_lib
from rnn_jax import rnn as rnn_lib
from rnn_jax.cells import carry_h
from rnn_jax.checks import check_ids, check_integer, check_rate, check_size
from rnn_jax.models.common import check_targets, freeze_cell
from rnn_jax.sequence import check_lengths

SITES = ("word_drop", "word", "char", "char_rnn", "rnn", "out")


@dataclasses.dataclass(frozen=True)
class Tagger:
    """Hyperparameters; `init` makes parameters, `apply` gives logits, `loss` masked sums.

    Attributes:
      vocab_size, char_vocab_size, num_tags: Vw, Vc, K.
      word_dim, char_dim: word and character embedding sizes.
      char_hidden: the character encoder's size per direction (the word's character features are 2x).
      hidden_size, num_layers: the sentence encoder's size per direction and its layers.
      cell, cell_options: the recurrent cell of both encoders (`rnn_jax.registry.CELLS` name or factory).
      dropout: rate on the word representations, between sentence layers and before the classifier.
      unk_id: the word id unknown words have; training replaces a token by it with the probability
        the batch's ``word_drop [B, T]`` gives (word dropout; None: no word dropout).
    """

    vocab_size: int
    char_vocab_size: int
    num_tags: int
    word_dim: int = 128
    char_dim: int = 64
    char_hidden: int = 100
    hidden_size: int = 200
    num_layers: int = 2
    cell: Any = "lstm"
    cell_options: Any = ()
    dropout: float = 0.0
    unk_id: int | None = None

    def __post_init__(self):
        freeze_cell(self)
        for name in ("vocab_size", "char_vocab_size", "num_tags", "word_dim", "char_dim", "char_hidden",
                     "hidden_size", "num_layers"):
            check_size(name, getattr(self, name))
        check_rate("dropout", self.dropout)

    @property
    def char_rnn(self) -> rnn_lib.Stack:
        """The character encoder: one bidirectional layer over ``[N words, C chars, char_dim]``."""
        return rnn_lib.Stack(self.char_dim, self.char_hidden, 1, cell_factory=self.cell,
                             cell_options=self.cell_options, batch_first=True, bidirectional=True)

    @property
    def rnn(self) -> rnn_lib.Stack:
        """The sentence encoder over ``[B, T, word_dim + 2 * char_hidden]``."""
        return rnn_lib.Stack(self.word_dim + 2 * self.char_rnn.output_size, self.hidden_size, self.num_layers,
                             cell_factory=self.cell, cell_options=self.cell_options, batch_first=True,
                             bidirectional=True, dropout=self.dropout)

    def init(self, key) -> dict:
        """Returns ``{'word_embed' [Vw, Ew], 'char_embed' [Vc, Ec], 'char_rnn', 'rnn', 'out': {w, b}}``."""
        k_w, k_c, k_cr, k_r, k_o = jax.random.split(key, 5)
        features = 2 * self.rnn.output_size
        bound = 1.0 / math.sqrt(features)
        return {"word_embed": jax.random.normal(k_w, (self.vocab_size, self.word_dim)) * 0.1,
                "char_embed": jax.random.normal(k_c, (self.char_vocab_size, self.char_dim)) * 0.1,
                "char_rnn": self.char_rnn.init(k_cr), "rnn": self.rnn.init(k_r),
                "out": {"w": jax.random.uniform(k_o, (features, self.num_tags), minval=-bound, maxval=bound),
                        "b": jnp.zeros((self.num_tags,))}}

    def _char_features(self, params, chars, char_lengths, keys, train):
        """Returns ``[N, 2 * char_hidden]`` of ``chars [N, C]``: each word's two final character states."""
        x = jnp.take(params["char_embed"], chars, axis=0)  # [N, C, Ec]
        if train:
            x = dropout_lib.dropout(keys["char"], self.dropout, x)
        _, final = self.char_rnn.apply(params["char_rnn"], x, char_lengths, deterministic=True)
        h = carry_h(final)  # [2, N, Hc]: forward after the last char, backward after the first
        return jnp.concatenate([h[0], h[1]], axis=-1).astype(jnp.float32)  # [N, 2*Hc]

    def apply(self, params, words, lengths, chars, char_lengths, *, word_drop=None, dropout_key=None,
              deterministic: bool = True):
        """Returns logits ``[B, T, K]`` (shapes in the module docstring; `word_drop` ``[B, T]`` or None).

        Shapes and dtypes are checked at trace time, id and length ranges only when concrete (module docstring).
        """
        words, lengths, chars, char_lengths = self._check_inputs(words, lengths, chars, char_lengths)
        train = not deterministic and dropout_key is not None
        keys = dropout_lib.split_named(dropout_key if train else None, SITES)
        if train and word_drop is not None and self.unk_id is not None:
            dropped = jax.random.uniform(keys["word_drop"], words.shape) < word_drop  # [B, T]
            words = jnp.where(dropped, jnp.asarray(self.unk_id, words.dtype), words)
        B, T, C = chars.shape
        rate_on = train and self.dropout > 0
        char_feats = self._char_features(params, chars.reshape(B * T, C), char_lengths.reshape(B * T), keys,
                                         rate_on)  # [B*T, 2*Hc]
        x = jnp.concatenate([jnp.take(params["word_embed"], words, axis=0),
                             char_feats.reshape(B, T, char_feats.shape[-1])], axis=-1)  # [B, T, Ew + 2*Hc]
        if rate_on:
            x = dropout_lib.dropout(keys["word"], self.dropout, x)
        ys, _ = self.rnn.apply(params["rnn"], x, lengths, dropout_key=keys["rnn"],
                               deterministic=not rate_on)  # [B, T, 2*H]
        ys = ys.astype(jnp.float32)
        if rate_on:
            ys = dropout_lib.dropout(keys["out"], self.dropout, ys)
        return ys @ params["out"]["w"] + params["out"]["b"][None, None, :]  # [B, T, K]

    def _check_inputs(self, words, lengths, chars, char_lengths):
        """Returns the four inputs as arrays after checking dtypes, shapes and (when concrete) ranges."""
        words, lengths, chars, char_lengths = (check_integer(name, x) for name, x in zip(
            ("words", "lengths", "chars", "char_lengths"), (words, lengths, chars, char_lengths)))
        _check_shapes(words, lengths, chars, char_lengths)
        check_ids("words", words, self.vocab_size, "[batch, time]")
        check_ids("chars", chars, self.char_vocab_size, "[batch, time, chars]")
        B, T, C = chars.shape
        check_lengths(lengths, B, T)
        check_lengths(char_lengths.reshape(B * T), B * T, C, name="char_lengths")
        return words, lengths, chars, char_lengths

    def apply_one(self, params, words, length, chars, char_lengths, **kwargs):
        """Returns logits ``[T, K]`` of one sentence: ``words [T]``, ``length ()``, ``chars [T, C]``,
        ``char_lengths [T]`` (`apply` on a batch of one; ``jax.vmap`` it for the auto-batched form)."""
        kwargs = {k: (v[None] if k == "word_drop" and v is not None else v) for k, v in kwargs.items()}
        return self.apply(params, words[None], jnp.reshape(length, (1,)), chars[None], char_lengths[None],
                          **kwargs)[0]

    def apply_vmapped(self, params, words, lengths, chars, char_lengths, *, word_drop=None, dropout_key=None,
                      deterministic: bool = True):
        """Returns logits ``[B, T, K]``, as `apply`, by ``jax.vmap`` of `apply_one` over the B sentences.

        In training each sentence draws its dropout from its own key (``split(dropout_key, B)``), so the
        masks differ from `apply`'s; without dropout the logits are the same.
        """
        args = (words, lengths, chars, char_lengths,
                jnp.zeros(words.shape, jnp.float32) if word_drop is None else word_drop)
        if deterministic or dropout_key is None:
            one = lambda w, n, c, cn, d: self.apply_one(params, w, n, c, cn)  # noqa: E731
            return jax.vmap(one)(*args)
        one = lambda w, n, c, cn, d, k: self.apply_one(params, w, n, c, cn, word_drop=d,  # noqa: E731
                                                       dropout_key=k, deterministic=False)
        return jax.vmap(one)(*args, jax.random.split(dropout_key, words.shape[0]))

    def loss(self, params, batch, *, dropout_key=None, deterministic: bool = True, vmap: bool = False):
        """Returns ``(loss_sum, count, aux)``: cross-entropy summed over real tokens (``batch['mask']``),
        their count, and ``aux = {'correct': count of right tags, 'predictions': [B, T] argmax tags}``.

        ``vmap=True`` computes the logits by `apply_vmapped` (the auto-batched form), else by `apply`.
        """
        words = check_ids("words", batch["words"], self.vocab_size, "[batch, time]")  # checked before computing
        check_targets(batch["tags"], batch["mask"], words.shape, self.num_tags, ("tags", "mask"))
        run = self.apply_vmapped if vmap else self.apply
        logits = run(params, batch["words"], batch["lengths"], batch["chars"], batch["char_lengths"],
                     word_drop=batch.get("word_drop"), dropout_key=dropout_key, deterministic=deterministic)
        return masked_token_loss(logits, batch["tags"], batch["mask"])


def masked_token_loss(logits, tags, mask):
    """Returns ``(loss_sum, count, aux)`` of ``logits [..., K]`` against ``tags [...]`` over ``mask [...]``."""
    tags, mask = check_targets(tags, mask, logits.shape[:-1], logits.shape[-1], ("tags", "mask"))
    mask = mask.astype(jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, tags)  # [...]
    predictions = jnp.argmax(logits, -1)
    correct = jnp.sum((predictions == tags).astype(jnp.float32) * mask)
    return jnp.sum(nll * mask), jnp.sum(mask), {"correct": correct, "predictions": predictions}


def _check_shapes(words, lengths, chars, char_lengths):
    """Raises ValueError naming the argument whose shape does not fit ``words [B, T]``."""
    if words.ndim != 2:
        raise ValueError(f"words must have shape [batch, time], got {words.shape}")
    B, T = words.shape
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape [batch]=({B},), got {lengths.shape}")
    if chars.ndim != 3 or chars.shape[:2] != (B, T):
        raise ValueError(f"chars must have shape [batch, time, chars] with batch, time = {B}, {T}, got {chars.shape}")
    if char_lengths.shape != (B, T):
        raise ValueError(f"char_lengths must have shape [batch, time]=({B}, {T}), got {char_lengths.shape}")
