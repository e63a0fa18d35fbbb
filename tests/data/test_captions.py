"""Tests of rnn_jax/data/captions.py and the captioning file map in files.py: the COCO-layout reader on a
hand-made two-image folder, the Karpathy layout, layout detection and its errors, the staged COCO-MINI against
its own JSON (read with json) and SOURCE.md, its checksums, image decoding against hand-made images (the
center crop's arithmetic), and precomputed features of every rank."""

import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from rnn_jax.data import captions, files
from rnn_jax.data.captions_format import CaptionedImage
from tests.data import DATA_DIR, requires_data

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _coco_folder(root, year="2017"):
    """Writes a two-image COCO validation split (annotations + PNG images) under root; returns the JSON dict."""
    coco = {"images": [{"id": 5, "file_name": "000000000005.jpg"}, {"id": 2, "file_name": "000000000002.jpg"}],
            "annotations": [{"image_id": 2, "id": 1, "caption": "A red square. "},
                            {"image_id": 5, "id": 2, "caption": "A blue one\n"},
                            {"image_id": 2, "id": 3, "caption": "red"}]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / f"captions_val{year}.json").write_text(json.dumps(coco))
    (root / f"val{year}").mkdir()
    for image in coco["images"]:  # PNG bytes under a .jpg name: PIL goes by content
        colour = BLUE if image["id"] == 5 else RED
        (root / f"val{year}" / image["file_name"]).write_bytes(_png(Image.new("RGB", (6, 4), colour)))
    return coco


def test_coco_layout_reader_on_a_hand_made_two_image_folder(tmp_path):
    _coco_folder(tmp_path)
    items = captions.read_captions("validation", data_dir=tmp_path)
    assert items == [
        CaptionedImage("5", "val2017/000000000005.jpg", ("A blue one",),
                       path=str(tmp_path / "val2017/000000000005.jpg")),
        CaptionedImage("2", "val2017/000000000002.jpg", ("A red square.", "red"),
                       path=str(tmp_path / "val2017/000000000002.jpg"))]
    assert captions.read_captions("val", data_dir=tmp_path, layout="coco", source="files") == items
    assert captions.image_bytes(items[1]) == (tmp_path / "val2017/000000000002.jpg").read_bytes()
    assert captions.image_bytes(items[1]._replace(data=b"xy")) == b"xy"
    with pytest.raises(ValueError, match="must have data or path"):
        captions.image_bytes(CaptionedImage("1", "a.jpg", ("c",)))
    with pytest.raises(FileNotFoundError, match=r"captions_train2017\.json, .*captions_train2014\.json"):
        captions.read_captions("train", data_dir=tmp_path)
    with pytest.raises(ValueError, match="COCO's caption files cover train and validation only"):
        captions.read_captions("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="include_restval applies to the Karpathy layout only"):
        captions.read_captions("train", data_dir=tmp_path, include_restval=True)
    bad = tmp_path / "annotations" / "captions_train2017.json"  # an annotation of an image the file lacks
    bad.write_text(json.dumps({"images": [], "annotations": [{"image_id": 8, "id": 4, "caption": "x"}]}))
    with pytest.raises(ValueError) as e:
        captions.read_captions("train", data_dir=tmp_path)
    assert str(e.value).startswith(f"{bad}: annotation 4 refers to image id 8, which is not among")


def test_coco_2014_names_and_a_data_root_holding_coco_mini(tmp_path):
    _coco_folder(tmp_path / "c2014", year="2014")
    assert [x.file_name for x in captions.read_captions("validation", data_dir=tmp_path / "c2014")] == \
        ["val2014/000000000005.jpg", "val2014/000000000002.jpg"]
    _coco_folder(tmp_path / "data" / "captioning" / "coco-mini")  # a data root, as $RNN_JAX_DATA is
    for root in (tmp_path / "data", tmp_path / "data" / "captioning"):
        assert files.captions_root(root) == tmp_path / "data" / "captioning" / "coco-mini"
        assert len(captions.read_captions("validation", data_dir=root)) == 2


def test_karpathy_layout_and_layout_detection(tmp_path):
    sentences = [{"raw": "A dog .", "tokens": ["a", "dog"]}]
    flickr = {"dataset": "flickr8k", "images": [
        {"filename": f"{i}.jpg", "imgid": i, "split": s, "sentences": sentences}
        for i, s in enumerate(("train", "val", "test", "train"))]}
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps(flickr))
    assert files.captions_layout(tmp_path) == "karpathy"
    test = captions.read_captions("test", data_dir=tmp_path)
    assert test == [CaptionedImage("2", "Flicker8k_Dataset/2.jpg", ("A dog .",),
                                   path=str(tmp_path / "Flicker8k_Dataset/2.jpg"))]
    assert [x.image_id for x in captions.read_captions("train", data_dir=tmp_path, dataset="flickr8k")] == ["0", "3"]
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(dict(flickr, dataset="flickr30k")))
    with pytest.raises(ValueError, match=r"several Karpathy files \(dataset_flickr30k\.json, dataset_flickr8k"):
        captions.read_captions("test", data_dir=tmp_path)
    assert captions.read_captions("test", data_dir=tmp_path, dataset="flickr30k")[0].file_name == \
        "flickr30k-images/2.jpg"
    with pytest.raises(FileNotFoundError, match=r"dataset_coco\.json"):
        captions.read_captions("test", data_dir=tmp_path, dataset="coco")
    for kwargs, match in (({"layout": "tfrecord"}, "layout must be"), ({"dataset": "flickr9k"}, "dataset must be"),
                          ({"layout": "coco", "dataset": "coco"}, "dataset applies to the Karpathy layout only"),
                          ({"source": "web"}, "source must be")):
        with pytest.raises(ValueError, match=match):
            captions.read_captions("test", data_dir=tmp_path, **kwargs)


def test_missing_or_unrecognised_data_say_where_to_get_coco(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"neither .*annotations.* nor .*dataset_\*\.json.*cocodataset\.org"):
        captions.read_captions("train", data_dir=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"does not exist.*cocodataset\.org"):
        captions.read_captions("train", data_dir=tmp_path / "missing")
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=r"no captioning data.*RNN_JAX_DATA.*cocodataset\.org"):
        captions.read_captions("train", source="files")
    with pytest.raises(ValueError, match="split must be one of train/validation/test/restval"):
        captions.read_captions("trian", data_dir=tmp_path)


@requires_data
def test_staged_coco_mini_against_its_json_and_source_md(monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(DATA_DIR))  # data_dir=None: $RNN_JAX_DATA/captioning/coco-mini
    root = DATA_DIR / files.COCO_MINI
    for split, name, n in (("train", "train2017", 80), ("validation", "val2017", 79)):
        items = captions.read_captions(split, verify=True)
        assert len(items) == n and all(len(x.captions) == 5 for x in items), split
        raw = json.loads((root / f"annotations/captions_{name}.json").read_text())
        first = raw["images"][0]
        assert items[0].image_id == str(first["id"]) and items[0].file_name == f"{name}/{first['file_name']}"
        assert items[0].captions[0] == next(a["caption"] for a in raw["annotations"]
                                            if a["image_id"] == first["id"]).strip()
        assert [x.image_id for x in items] == [str(i["id"]) for i in raw["images"]]
        assert all((root / x.file_name).is_file() and x.path == str(root / x.file_name) for x in items)
    assert captions.read_captions("train")[0].image_id == "493652"


@requires_data
def test_coco_mini_checksums_are_recorded_under_its_folder_name(tmp_path):
    staged = DATA_DIR / files.COCO_MINI / "annotations"
    for folder in ("coco-mini", "coco"):
        (tmp_path / folder / "annotations").mkdir(parents=True)
        shutil.copy(staged / "captions_val2017.json", tmp_path / folder / "annotations")
    copy = tmp_path / "coco-mini" / "annotations" / "captions_val2017.json"
    assert len(captions.read_captions("val", data_dir=tmp_path / "coco-mini", verify=True)) == 79
    copy.write_text(copy.read_text().replace("A man", "A woman", 1))
    with pytest.raises(ValueError, match=r"sha256 mismatch.*captions_val2017\.json"):
        captions.read_captions("val", data_dir=tmp_path / "coco-mini", verify=True)
    # the full COCO's file of the same name has no recorded checksum: it passes unchecked
    other = tmp_path / "coco" / "annotations" / "captions_val2017.json"
    other.write_text(copy.read_text())
    assert files.expected_sha256(other) is None
    assert len(captions.read_captions("val", data_dir=tmp_path / "coco", verify=True)) == 79


def test_decode_image_center_crop_arithmetic():
    # 12 x 4, size 2: scaled by 1/2 to 6 x 2, crop columns 2..3 = source columns 4..7 (the bilinear filter
    # also reaches columns 3 and 8): blue columns 3..8 give pure blue, a crop one column off would mix in red
    pixels = np.zeros((4, 12, 3), np.uint8)
    pixels[:] = RED
    pixels[:, 3:9] = BLUE
    out = captions.decode_image(_png(Image.fromarray(pixels)), 2)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.broadcast_to(np.float32([0, 0, 1]), (2, 2, 3)))
    # the same image standing up (4 x 12): rows 4..7 are kept
    np.testing.assert_array_equal(captions.decode_image(_png(Image.fromarray(pixels.transpose(1, 0, 2))), 2), out)
    # no resize (shorter side = size): a plain crop, values / 255 exactly
    gray = np.arange(6 * 3, dtype=np.uint8).reshape(3, 6) * 10
    np.testing.assert_array_equal(captions.decode_image(_png(Image.fromarray(gray, "L")), 3),
                                  np.repeat(gray[:, 1:4, None], 3, axis=2) / np.float32(255))


def test_decode_image_modes_formats_and_errors():
    rgba = Image.new("RGBA", (5, 3), (10, 20, 30, 0))
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(jpeg, format="JPEG", quality=95)
    for data, size in ((_png(rgba), 2), (jpeg.getvalue(), 16), (_png(Image.new("P", (7, 9))), 4)):
        out = captions.decode_image(data, size)
        assert out.shape == (size, size, 3) and out.dtype == np.float32 and 0.0 <= out.min() <= out.max() <= 1.0
    np.testing.assert_allclose(captions.decode_image(jpeg.getvalue(), 16), np.full((16, 16, 3), 1.0) *
                               np.float32([200, 100, 50]) / 255, atol=3 / 255)  # JPEG is lossy
    np.testing.assert_array_equal(captions.decode_image(_png(rgba), 2),
                                  np.full((2, 2, 3), [10, 20, 30], np.float32) / np.float32(255))  # alpha dropped
    for size in (0, 2.0, True):
        with pytest.raises(ValueError, match="size must be a positive int"):
            captions.decode_image(_png(rgba), size)
    with pytest.raises(ValueError, match="data must hold an image file"):
        captions.decode_image(b"not an image", 2)


def test_load_features_of_every_rank_and_the_errors(tmp_path):
    vector, regions, grid = np.arange(4.0), np.ones((3, 4), np.float16), np.arange(2 * 3 * 4).reshape(2, 3, 4)
    for stem, array in (("v", vector), ("r", regions), ("g", grid), ("bad", np.zeros((1, 1, 1, 2)))):
        np.save(tmp_path / f"{stem}.npy", array)
    out = captions.load_features(tmp_path, "train2017/v.jpg")
    assert out.dtype == np.float32 and out.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert captions.load_features(tmp_path, "r.jpg").dtype == np.float32
    np.testing.assert_array_equal(captions.load_features(tmp_path, "r.jpg"), np.ones((3, 4)))
    g = captions.load_features(tmp_path, "/abs/g.png")
    assert g.shape == (6, 4) and g.dtype == np.float32
    np.testing.assert_array_equal(g[4], grid[1, 1])  # row-major: cell (1, 1) is row 1 * 3 + 1
    with pytest.raises(FileNotFoundError, match=r"no features for image val2017/x\.jpg: .*x\.npy does not exist"):
        captions.load_features(tmp_path, "val2017/x.jpg")
    with pytest.raises(ValueError, match=r"must have shape \[D\], \[S, D\] or \[h, w, D\], got shape \(1, 1, 1, 2\)"):
        captions.load_features(tmp_path, "bad.jpg")


def test_unreadable_truncated_or_missing_images_name_the_image(tmp_path):
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(jpeg, format="JPEG")
    whole = jpeg.getvalue()
    for name, data in (("cut.jpg", whole[:len(whole) // 2]), ("tail.jpg", whole[:-10]), ("text.jpg", b"GIF89a?"),
                       ("empty.jpg", b"")):
        (tmp_path / name).write_bytes(data)
        example = CaptionedImage(name[:-4], f"val2017/{name}", ("a caption",), path=str(tmp_path / name))
        with pytest.raises(ValueError, match=rf"^image {name[:-4]} \({re.escape(str(tmp_path / name))}\): data must "
                                             rf"hold an image file PIL can decode .*got {len(data)} bytes"):
            captions.load_image(example, 8)
    np.testing.assert_allclose(captions.load_image(CaptionedImage("ok", "ok.jpg", ("c",), data=whole), 8),
                               captions.decode_image(whole, 8))
    with pytest.raises(FileNotFoundError, match=r"^image 7 \(val2017/7\.jpg\): .*7\.jpg does not exist"):
        captions.load_image(CaptionedImage("7", "val2017/7.jpg", ("c",), path=str(tmp_path / "7.jpg")), 8)


def test_load_features_refuses_object_arrays_and_broken_files_naming_the_file(tmp_path):
    ran = []

    class Payload:  # unpickling it would run code: allow_pickle=False must refuse before that
        def __reduce__(self):
            return ran.append, ("unpickled",)

    np.save(tmp_path / "obj.npy", np.array([Payload(), 1.0], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=rf"features of image val2017/obj\.jpg: {re.escape(str(tmp_path))}/obj\.npy "
                                         r"is not a plain \.npy array of numbers \(Object arrays cannot be loaded"):
        captions.load_features(tmp_path, "val2017/obj.jpg")
    assert ran == []
    np.save(tmp_path / "whole.npy", np.ones((4, 8), np.float32))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "whole.npy").read_bytes()[:100])
    (tmp_path / "text.npy").write_bytes(b"0.5 0.25\n")
    for stem in ("cut", "text"):
        with pytest.raises(ValueError, match=rf"features of image {stem}\.jpg: .*{stem}\.npy is not a plain \.npy"):
            captions.load_features(tmp_path, f"{stem}.jpg")
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"words\.npy must be numbers, got dtype <U1"):
        captions.load_features(tmp_path, "words.jpg")
