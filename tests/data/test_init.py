"""Tests of rnn_jax/data/__init__.py: the public names and module paths stay importable, and the package's
layers hold (parsers and files at the bottom, the TFDS builders above them, the split readers on top)."""

import ast
import importlib
from pathlib import Path

import pytest

import rnn_jax.data

PACKAGE = Path(rnn_jax.data.__file__).parent
# module -> the package modules it may import (anywhere in it, function bodies included); nothing imports upward
ALLOWED = {
    "splits": set(), "text_format": set(), "sst_format": set(), "conllu_format": set(), "translation_format": set(),
    "captions_format": {"splits"}, "vocab": set(), "files": {"splits"},
    "tfds_builders": {"files", "splits", "text_format", "sst_format", "conllu_format", "translation_format",
                      "captions_format"},
    "text": {"files", "splits", "text_format", "tfds_builders"},
    "sst": {"files", "splits", "sst_format", "tfds_builders", "vocab"},
    "lm": {"text", "splits", "vocab"},
    "tagging": {"vocab"},
    "parallel": {"vocab"},
    "ud": {"files", "splits", "conllu_format", "tfds_builders"},
    "multi30k": {"files", "translation_format", "tfds_builders"},
    "captions": {"files", "captions_format", "tfds_builders"},
    "caption_batches": {"parallel", "vocab"},
}


def _package_imports(name):
    """Returns {(module, imported name or None)} for every import of a sibling module in `name`."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(a.name.split(".")[2], None) for a in node.names if a.name.startswith("rnn_jax.data.")}
        elif isinstance(node, ast.ImportFrom) and node.module == "rnn_jax.data":
            out |= {(a.name, None) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnn_jax.data."):
            out |= {(node.module.split(".")[2], a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{name} uses a relative import; the layer check reads absolute ones")
    return out


def test_every_module_is_placed_in_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert modules == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_go_only_downward_and_take_no_private_name(name):
    imports = _package_imports(name)
    assert {module for module, _ in imports} <= ALLOWED[name]
    assert not [f"{module}.{n}" for module, n in imports if n is not None and n.startswith("_")]


def test_public_names_come_from_their_home_modules():
    homes = {"files": ["data_root", "locate", "verify_file"],
             "lm": ["LMBatch", "LMBatches", "LMCorpus", "LMIterator", "load_lm_corpus", "lm_vocabulary"],
             "splits": ["SPLITS", "canonical_split"],
             "sst": ["SentenceBatch", "bucket_lengths_for", "read_sst", "read_sst_trees", "sentence_batches",
                     "sst_vocabulary"],
             "sst_format": ["SentimentExample", "Tree", "parse_tree", "to_binary", "tree_phrases"],
             "text": ["lm_tokens", "read_ptb", "read_tiny_shakespeare"],
             "text_format": ["decode_ptb_char_line", "split_like_tfds"], "vocab": ["Vocabulary"],
             "conllu_format": ["TaggedSentence", "parse_conllu", "replace_tags"],
             "translation_format": ["detokenize"], "multi30k": ["read_multi30k"],
             "ud": ["read_ud", "tag_set", "ud_text"], "captions": ["read_captions"],
             "captions_format": ["CaptionedImage", "tokenize_caption"]}
    assert sorted(n for names in homes.values() for n in names) == sorted(rnn_jax.data.__all__)
    for module, names in homes.items():
        home = importlib.import_module(f"rnn_jax.data.{module}")
        for n in names:
            assert getattr(rnn_jax.data, n) is getattr(home, n), n


def test_module_paths_the_experiments_use():
    from rnn_jax.data import lm, sst, vocab
    assert callable(sst.read_sst) and callable(sst.sentence_batches) and callable(sst.sst_vocabulary)
    assert callable(lm.load_lm_corpus) and isinstance(lm.LMBatches, type) and isinstance(vocab.Vocabulary, type)
    assert sst.SentimentExample is rnn_jax.data.SentimentExample  # what read_sst returns
