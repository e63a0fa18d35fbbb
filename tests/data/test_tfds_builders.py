"""Tests of rnn_jax/data/tfds_builders.py: each builder prepares array_record from the staged copy without
TensorFlow, and the prepared datasets read back (tfds.data_source) equal to the direct file readers (for
``image_captions``: COCO-MINI with each image's bytes equal to its file, and hand-made Karpathy folders)."""

import hashlib
import json
import sys
from pathlib import Path

import pytest

from tests.data import DATA_DIR, requires_data

tfds = pytest.importorskip("tensorflow_datasets")
from rnn_jax.data import captions, sst, text, tfds_builders  # noqa: E402
from rnn_jax.data.captions_format import KARPATHY_IMAGE_DIRS  # noqa: E402
from rnn_jax.data.files import TINY_SHAKESPEARE  # noqa: E402

pytestmark = requires_data


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tfds")
    for name in ("tiny_shakespeare", "ptb_word", "ptb_char", "sst"):
        tfds_builders.prepare(name, tfds_dir=out, data_dir=DATA_DIR)
    return out


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepared_without_tensorflow(tfds_dir):
    assert "tensorflow" not in sys.modules
    for name in ("tiny_shakespeare", "ptb_word", "ptb_char", "sst"):
        files = sorted(p.name for p in (tfds_dir / name / "1.0.0").iterdir())
        assert f"{name}-train.array_record-00000-of-00001" in files and "dataset_info.json" in files


def test_tiny_shakespeare_is_byte_identical_to_the_stock_builder(tfds_dir):
    # The staged copy was written by TFDS's own tiny_shakespeare builder (with TensorFlow).
    stock = DATA_DIR / "tfds/tiny_shakespeare/1.0.0"
    for split in ("train", "validation", "test"):
        name = f"tiny_shakespeare-{split}.array_record-00000-of-00001"
        assert _sha(tfds_dir / "tiny_shakespeare/1.0.0" / name) == _sha(stock / name), split
    assert (tfds_dir / "tiny_shakespeare/1.0.0/features.json").read_text() == (stock / "features.json").read_text()


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_read_back_equals_direct_readers(tfds_dir, split):
    for level in ("word", "char"):
        direct = text.read_ptb(split, level=level, data_dir=DATA_DIR)
        assert text.read_ptb(split, level=level, source="tfds", tfds_dir=tfds_dir, data_dir=DATA_DIR) == direct
    assert sst.read_sst_trees(split, source="tfds", tfds_dir=tfds_dir, data_dir=DATA_DIR) == \
        sst.read_sst_trees(split, data_dir=DATA_DIR)
    assert sst.read_sst(split, binary=True, source="tfds", tfds_dir=tfds_dir, data_dir=DATA_DIR) == \
        sst.read_sst(split, binary=True, data_dir=DATA_DIR)
    assert text.read_tiny_shakespeare(split, source="tfds", tfds_dir=tfds_dir, data_dir=DATA_DIR) == \
        text.read_tiny_shakespeare(split, data_dir=DATA_DIR)


def test_registered_names_and_data_source_by_name(tfds_dir):
    names = tfds.list_builders(with_community_datasets=False)  # the community index needs GCS
    assert {"ptb_word", "ptb_char", "sst"} <= set(names)
    sources = tfds.data_source("sst", data_dir=str(tfds_dir), download=False)
    assert {s: len(v) for s, v in sources.items()} == {"train": 8_544, "validation": 1_101, "test": 2_210}
    first = sources["train"][0]
    assert first["label"] == 3 and first["sentence"].decode().startswith("The Rock is destined")
    ptb = tfds.data_source("ptb_word", data_dir=str(tfds_dir), download=False)
    assert {s: len(v) for s, v in ptb.items()} == {"train": 42_068, "validation": 3_370, "test": 3_761}
    assert "tensorflow" not in sys.modules


def test_missing_preparation_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared"):
        tfds_builders.data_source("ptb_word", "train", tfds_dir=tmp_path, data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="name must be one of"):
        tfds_builders.prepare("imdb", tfds_dir=tmp_path)
    # a configured data root is never silently replaced by a download
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tfds_builders.prepare("ptb_word", tfds_dir=tmp_path / "out", data_dir=tmp_path / "missing")
    (tmp_path / "empty-root" / "other").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"cannot find charlm/ptb/ptb.train.txt.gz.*RNN_JAX_DATA"):
        tfds_builders.prepare("ptb_word", tfds_dir=tmp_path / "out", data_dir=tmp_path / "empty-root")


@pytest.fixture
def official_server(tmp_path, monkeypatch):
    """Serves copies of the official downloads over HTTP on localhost (no network needed); the builders'
    URLs point at it and no local data root is configured."""
    import functools
    import gzip
    import http.server
    import tarfile
    import threading
    import zipfile

    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "input.txt").write_bytes((DATA_DIR / TINY_SHAKESPEARE).read_bytes())
    with tarfile.open(srv / "simple-examples.tgz", "w") as tar:  # tarfile reads it whatever the suffix
        for split in ("train", "valid", "test"):
            plain = tmp_path / f"ptb.{split}.txt"
            plain.write_bytes(gzip.decompress((DATA_DIR / f"charlm/ptb/ptb.{split}.txt.gz").read_bytes()))
            tar.add(plain, arcname=f"simple-examples/data/ptb.{split}.txt")
    with zipfile.ZipFile(srv / "trainDevTestTrees_PTB.zip", "w") as z:
        for name in ("train.txt", "dev.txt", "test.txt"):
            z.write(DATA_DIR / "sentiment/sst" / name, arcname=f"trees/{name}")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(srv)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(tfds_builders, "_TINY_URL", f"{base}/input.txt")
    monkeypatch.setattr(tfds_builders, "_PTB_URL", f"{base}/simple-examples.tgz")
    monkeypatch.setattr(tfds_builders, "_SST_URL", f"{base}/trainDevTestTrees_PTB.zip")
    monkeypatch.delenv("RNN_JAX_DATA", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a CI proxy must not intercept localhost
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield srv
    server.shutdown()
    server.server_close()


def test_without_a_local_copy_builders_download_the_official_sources(official_server, tmp_path):
    out = tmp_path / "tfds"
    for name in ("tiny_shakespeare", "ptb_word", "sst"):
        tfds_builders.prepare(name, tfds_dir=out)  # no data_dir, no RNN_JAX_DATA
    assert text.read_ptb("test", source="tfds", tfds_dir=out) == text.read_ptb("test", data_dir=DATA_DIR)
    assert sst.read_sst_trees("dev", source="tfds", tfds_dir=out) == sst.read_sst_trees("dev", data_dir=DATA_DIR)
    assert text.read_tiny_shakespeare("validation", source="tfds", tfds_dir=out) == \
        text.read_tiny_shakespeare("validation", data_dir=DATA_DIR)
    assert "tensorflow" not in sys.modules


def test_no_data_root_at_all_reads_through_tfds_default_folder(official_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "default"))
    # source="auto" with neither data_dir nor RNN_JAX_DATA: prepared in $TFDS_DATA_DIR from the official URL
    assert text.read_tiny_shakespeare("test") == text.read_tiny_shakespeare("test", data_dir=DATA_DIR)
    assert (tmp_path / "default/tiny_shakespeare/1.0.0/dataset_info.json").is_file()


def test_a_download_with_the_wrong_checksum_is_refused(official_server, tmp_path):
    (official_server / "input.txt").write_text("To be, or not to be\n" * 100)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        tfds_builders.prepare("tiny_shakespeare", tfds_dir=tmp_path / "tfds")


def test_image_captions_read_back_equals_the_files_and_their_bytes(tmp_path):
    tfds_builders.prepare("image_captions", tfds_dir=tmp_path, data_dir=DATA_DIR)  # a data root: coco-mini under it
    for split in ("train", "validation"):
        direct = captions.read_captions(split, data_dir=DATA_DIR)
        back = captions.read_captions(split, source="tfds", tfds_dir=tmp_path, data_dir=DATA_DIR)
        assert [x[:3] for x in back] == [x[:3] for x in direct] and len(direct) in (80, 79), split
        assert all(b.path is None and b.data == Path(d.path).read_bytes() for b, d in zip(back, direct)), split
    sources = tfds.data_source("image_captions", data_dir=str(tmp_path), download=False)
    assert {s: len(v) for s, v in sources.items()} == {"train": 80, "validation": 79}
    assert len(sources["train"][0]["captions"]) == 5
    assert "tensorflow" not in sys.modules


def _karpathy_folder(root, dataset, labels):
    """Writes a Karpathy dataset_<dataset>.json with one tiny PNG image per split label; returns root."""
    images = []
    for i, label in enumerate(labels):
        folder = "train2014" if dataset == "coco" else KARPATHY_IMAGE_DIRS[dataset]
        image = {"filename": f"{i}.png", "imgid": i, "split": label,
                 "sentences": [{"raw": f"Image {i} .", "tokens": ["image", str(i)]}, {"raw": "Two.", "tokens": []}]}
        if dataset == "coco":
            image.update(filepath=folder, cocoid=100 + i)
        images.append(image)
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{i}.png").write_bytes(bytes([i]) * (i + 1) + b"\x00\xff")  # bytes, never decoded
    (root / f"dataset_{dataset}.json").write_text(json.dumps({"dataset": dataset, "images": images}))
    return root


def test_image_captions_karpathy_config_with_and_without_restval(tmp_path):
    for dataset, labels in (("coco", ("restval", "train", "val", "test", "restval")),
                            ("flickr8k", ("train", "val", "test", "train"))):
        root = _karpathy_folder(tmp_path / dataset, dataset, labels)
        out = tmp_path / f"tfds-{dataset}"
        for split, restval in (("train", True), ("train", False), ("validation", False), ("test", False)):
            direct = captions.read_captions(split, data_dir=root, include_restval=restval)
            back = captions.read_captions(split, data_dir=root, source="tfds", tfds_dir=out, layout="karpathy",
                                          include_restval=restval)  # prepared into out on the first call
            assert [x[:3] for x in back] == [x[:3] for x in direct] and \
                [x.data for x in back] == [captions.image_bytes(x) for x in direct], (dataset, split, restval)
        splits = set(tfds.data_source("image_captions/karpathy", data_dir=str(out), download=False))
        assert splits == {"train", "validation", "test"} | ({"restval"} if dataset == "coco" else set())
    assert [x.image_id for x in captions.read_captions("train", data_dir=tmp_path / "coco", source="tfds",
                                                       tfds_dir=tmp_path / "tfds-coco", include_restval=True)] == \
        ["101", "100", "104"]


def test_image_captions_without_a_local_copy_say_where_to_get_coco(tmp_path, monkeypatch):
    monkeypatch.delenv("RNN_JAX_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"image_captions has no download.*cocodataset\.org"):
        tfds_builders.prepare("image_captions", tfds_dir=tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"no captioning data.*cocodataset\.org"):
        captions.read_captions("train", source="files")
