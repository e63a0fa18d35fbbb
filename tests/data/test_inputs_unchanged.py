"""No input file is ever modified: every split reader, run over a small hand-made copy of the staged layout
(and the vocabulary loaders over their files), leaves each file's bytes and modification time as they were
and writes nothing under the data root; the TFDS builders write their prepared copy elsewhere only."""

import gzip
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from rnn_jax.data import captions, lm, multi30k, parallel, sst, tagging, text, ud
from rnn_jax.data.vocab import Vocabulary

WORD = "{}\t{}\t{}\tNOUN\tNN\t_\t0\troot\t_\t_\n"


def _write(root, relpath, data: bytes):
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if relpath.endswith(".gz") else data)


def _layout(root):
    """Writes one tiny file per reader where the staged data has it (every split the readers touch)."""
    _write(root, "charlm/tinyshakespeare/input.txt", b"First Citizen:\nBefore we proceed any further.\n" * 3)
    for split in ("train", "valid", "test"):
        _write(root, f"charlm/ptb/ptb.{split}.txt.gz", b" the cat sat \n a <unk> dog \n")
        _write(root, f"charlm/ptb/ptb.char.{split}.txt.gz", b" t h e _ c a t \n a _ d o g \n ")
    for split in ("train", "dev", "test"):
        _write(root, f"sentiment/sst/{split}.txt", b"(3 (2 a) (4 (3 good) (2 film)))\n(1 (1 bad) (2 .))\n")
        conllu = f"# sent_id = {split}-1\n" + WORD.format(1, "Dogs", "dog") + WORD.format(2, "bark", "bark") + "\n"
        _write(root, f"pos/ud-2.16/en_ewt-ud-{split}.conllu", conllu.encode())
    for form, name in (("tok", "val.lc.norm.tok.{}.gz"), ("raw", "val.{}.gz")):
        for lang, line in (("en", b"a dog runs .\ntwo cats\n"), ("de", b"ein hund rennt .\nzwei katzen\n")):
            _write(root, f"translation/multi30k/{form}/{name.format(lang)}", line)
    coco = {"images": [{"id": 1, "file_name": "1.jpg"}], "annotations": [{"image_id": 1, "id": 1, "caption": "A dog."}]}
    _write(root, "captioning/coco-mini/annotations/captions_val2017.json", json.dumps(coco).encode())
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(jpeg, format="JPEG")
    _write(root, "captioning/coco-mini/val2017/1.jpg", jpeg.getvalue())
    np.save(root / "1.npy", np.ones((2, 3), np.float32))


def _state(root) -> dict:
    """Returns {relative path: (bytes, mtime_ns)} of every file under root, and each folder's mtime_ns."""
    out = {}
    for folder, _, names in os.walk(root):
        out[os.path.relpath(folder, root)] = (None, os.stat(folder).st_mtime_ns)
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = (f.read(), os.stat(path).st_mtime_ns)
    return out


def _read_everything(root, workdir):
    """Runs every split reader of rnn_jax.data over root, and the vocabulary loaders over workdir's files."""
    for split in ("train", "validation", "test"):
        text.read_tiny_shakespeare(split, data_dir=root)
        lm.load_lm_corpus("ptb_char", data_dir=root)
        sst.read_sst(split, phrases=True, data_dir=root)
        ud.read_ud(split, data_dir=root)
        ud.ud_text(split, data_dir=root)
    words = lm.load_lm_corpus("ptb_word", data_dir=root)
    for tokenized in (True, False):
        pairs = multi30k.read_multi30k("val", tokenized=tokenized, data_dir=root)
    (image,) = captions.read_captions("validation", data_dir=root)
    assert captions.load_image(image, 4).shape == (4, 4, 3)
    assert captions.load_features(root, image.file_name).shape == (2, 3)
    # the loaders of what a run saved in its workdir (a workdir is an input on resume)
    sentences = [(s.words, s.upos) for s in ud.read_ud("train", data_dir=root)]
    saved = {"vocab.json": words.vocab, "tagging.json": tagging.TaggingVocabularies.build(sentences)}
    for name, vocab in saved.items():
        vocab.save(workdir / name)
    parallel.save_vocabularies(parallel.pair_vocabularies(pairs), workdir / "pairs.json")
    before = _state(workdir)
    assert Vocabulary.load(workdir / "vocab.json") == words.vocab
    assert tagging.TaggingVocabularies.load(workdir / "tagging.json") == saved["tagging.json"]
    parallel.load_vocabularies(workdir / "pairs.json")
    assert _state(workdir) == before


def test_readers_leave_every_input_file_as_it_was(tmp_path):
    root, workdir = tmp_path / "data", tmp_path / "workdir"
    _layout(root)
    workdir.mkdir()
    before = _state(root)
    _read_everything(root, workdir)
    after = _state(root)
    assert sorted(after) == sorted(before)  # nothing written (or removed) under the data root
    changed = [path for path in before if after[path] != before[path]]
    assert changed == []


def test_tfds_preparation_reads_the_data_root_and_writes_only_its_own_folder(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    from rnn_jax.data import tfds_builders
    root = tmp_path / "release"  # the release's plain files at the top: no recorded checksum applies to them
    _layout(tmp_path / "data")
    for split in ("train", "dev", "test"):
        staged = tmp_path / f"data/pos/ud-2.16/en_ewt-ud-{split}.conllu"
        _write(root, f"en_ewt-ud-{split}.conllu", staged.read_bytes())
    before = _state(root)
    tfds_builders.prepare("ud_english_ewt", tfds_dir=tmp_path / "tfds", data_dir=root)
    assert ud.read_ud("test", source="tfds", tfds_dir=tmp_path / "tfds", data_dir=root) == \
        ud.read_ud("test", data_dir=root)
    assert _state(root) == before
