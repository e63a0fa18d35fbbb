"""The tagger against PyTorch, and the four batching modes against each other (each sentence alone is the
reference: padding, buckets and vmap must give its loss and gradients exactly)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.data import tagging
from rnn_jax.models.tagger import Tagger
from tests.conftest import assert_close

WORDS = "the cat sat on a mat and dogs ran far away quickly".split()
TAGS = ("DET", "NOUN", "VERB", "ADP", "ADV", "CCONJ")


def sentences(seed=0):
    """Six random sentences of 1, 2 or 4 words (few distinct lengths, so few compiled shapes), random tags."""
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 4, 4, 2, 1]
    return [(tuple(rng.choice(WORDS, L)), tuple(rng.choice(TAGS, L))) for L in lengths]


@functools.lru_cache(maxsize=None)
def setup():
    train = sentences()
    vocabs = tagging.TaggingVocabularies.build(train[:4], tag_set=TAGS)  # later sentences hold unseen words too
    encoded = [tagging.encode_sentence(w, t, vocabs, max_word_chars=5) for w, t in train]
    model = Tagger(len(vocabs.words), len(vocabs.chars), len(vocabs.tags), word_dim=4, char_dim=3,
                   char_hidden=2, hidden_size=3, num_layers=1)
    return vocabs, encoded, model, model.init(jax.random.key(0))


def totals(mode: str):
    """The loss sum and gradient sum over every batch of `mode` (one compile per batch shape: the
    sentences have three distinct lengths and the batches at most two shapes per mode)."""
    _, encoded, model, params = setup()
    fn = jax.jit(jax.value_and_grad(lambda p, b: model.loss(p, b, vmap=mode == "vmap")[0]))
    loss, grads = 0.0, jax.tree.map(jnp.zeros_like, params)
    for batch in tagging.tagging_batches(encoded, mode, batch_size=3, buckets=(4, 8), shuffle=True, seed=1):
        value, g = fn(params, {k: jnp.asarray(v) for k, v in batch.items()})
        loss, grads = loss + value, jax.tree.map(jnp.add, grads, g)
    return loss, grads


def test_every_batching_mode_gives_each_sentence_alone_its_loss_and_gradients():
    alone = totals("one_by_one")  # the reference: each sentence at its own length, no padding
    for mode in ("padding", "buckets", "vmap"):
        got = totals(mode)
        assert_close(got[0], alone[0], err_msg=mode)
        jax.tree.map(lambda a, b: assert_close(a, b, "grad", err_msg=mode), got[1], alone[1])


def test_one_by_one_batches_have_no_padding_and_buckets_pad_to_the_bound():
    encoded = setup()[1]
    for batch in tagging.tagging_batches(encoded, "one_by_one", batch_size=3):
        assert batch["words"].shape[0] == 1 and batch["mask"].all()
    shapes = {b["words"].shape[1] for b in tagging.tagging_batches(encoded, "buckets", batch_size=3, buckets=(2, 8))}
    assert shapes == {2, 8}
    for batch in tagging.tagging_batches(encoded, "padding", batch_size=3):
        assert batch["words"].shape[1] == batch["lengths"].max()


def test_matches_pytorch_word_embedding_char_bilstm_and_sentence_bilstm():
    torch = pytest.importorskip("torch")
    from rnn_jax.interop.torch import from_torch

    vocabs, encoded, model, _ = setup()
    g = torch.Generator().manual_seed(0)
    word_emb = torch.nn.Embedding(model.vocab_size, model.word_dim)
    char_emb = torch.nn.Embedding(model.char_vocab_size, model.char_dim)
    char_rnn = torch.nn.LSTM(model.char_dim, model.char_hidden, bidirectional=True, batch_first=True)
    rnn = torch.nn.LSTM(model.word_dim + 2 * model.char_hidden, model.hidden_size, model.num_layers, bidirectional=True,
                        batch_first=True)
    out = torch.nn.Linear(2 * model.hidden_size, model.num_tags)
    with torch.no_grad():
        for p in [*word_emb.parameters(), *char_emb.parameters(), *char_rnn.parameters(), *rnn.parameters(),
                  *out.parameters()]:
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    params = {"word_embed": jnp.asarray(word_emb.weight.detach().numpy()),
              "char_embed": jnp.asarray(char_emb.weight.detach().numpy()),
              "char_rnn": from_torch(char_rnn)[1], "rnn": from_torch(rnn)[1],
              "out": {"w": jnp.asarray(out.weight.detach().numpy().T), "b": jnp.asarray(out.bias.detach().numpy())}}
    batch = next(tagging.tagging_batches(encoded, "padding", batch_size=len(encoded)))
    logits = model.apply(params, *(jnp.asarray(batch[k]) for k in ("words", "lengths", "chars", "char_lengths")))
    for b, s in enumerate(encoded):  # torch: every word and every sentence alone, no padding anywhere
        feats = []
        for w in range(len(s.words)):
            chars = torch.as_tensor(s.chars[w, :s.char_lengths[w]], dtype=torch.long)[None]
            _, (h, _) = char_rnn(char_emb(chars))  # h [2, 1, Hc]
            feats.append(torch.cat([h[0, 0], h[1, 0]]))
        x = torch.cat([word_emb(torch.as_tensor(s.words, dtype=torch.long)), torch.stack(feats)], -1)[None]
        want = out(rnn(x)[0])[0].detach().numpy()  # [T_b, K]
        assert_close(logits[b, :len(s.words)], want)


def test_word_dropout_replaces_a_token_by_unk_with_the_batch_probability():
    model = Tagger(10, 5, 3, word_dim=2, char_dim=2, char_hidden=1, hidden_size=2, num_layers=1, unk_id=1)
    params = model.init(jax.random.key(0))
    words = jnp.asarray([[7, 3, 5]], jnp.int32)
    rest = (jnp.asarray([3]), jnp.ones((1, 3, 1), jnp.int32), jnp.ones((1, 3), jnp.int32))
    train = functools.partial(model.apply, params, dropout_key=jax.random.key(3), deterministic=False)
    always = train(words, *rest, word_drop=jnp.asarray([[0.0, 1.0, 0.0]]))
    assert_close(always, model.apply(params, jnp.asarray([[7, 1, 5]]), *rest))  # the middle word became unk
    assert_close(train(words, *rest, word_drop=jnp.zeros((1, 3))), model.apply(params, words, *rest))


@pytest.mark.parametrize("name, change", [
    ("words", lambda a: a.__setitem__(0, a[0][0])),
    ("lengths", lambda a: a.__setitem__(1, a[1][:1])),
    ("chars", lambda a: a.__setitem__(2, a[2][:, :1])),
    ("char_lengths", lambda a: a.__setitem__(3, a[3][:, :1])),
])
def test_a_misshapen_input_is_named(name, change):
    model = Tagger(10, 5, 3, word_dim=2, char_dim=2, char_hidden=1, hidden_size=1, num_layers=1)
    args = [jnp.zeros((2, 3), jnp.int32), jnp.ones((2,), jnp.int32), jnp.zeros((2, 3, 4), jnp.int32),
            jnp.ones((2, 3), jnp.int32)]
    change(args)
    with pytest.raises(ValueError, match=name):
        model.apply(model.init(jax.random.key(0)), *args)
