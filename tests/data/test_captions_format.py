"""Tests of rnn_jax/data/captions_format.py on hand-made annotation files: COCO's caption JSON (order, stripped
captions, errors naming the file and the id), Karpathy's split JSON (every split label, restval, image folders,
errors) and the caption tokeniser on hand cases."""

import json

import pytest

from rnn_jax.data.captions_format import (KARPATHY_IMAGE_DIRS, CaptionedImage, parse_coco, parse_karpathy,
                                          tokenize_caption)

COCO = {"info": {"year": 2017}, "licenses": [],
        "images": [{"id": 7, "file_name": "000000000007.jpg", "height": 4, "width": 6},
                   {"id": 3, "file_name": "000000000003.jpg", "height": 6, "width": 4}],
        "annotations": [{"image_id": 3, "id": 11, "caption": "A dog on a sofa. "},
                        {"image_id": 7, "id": 12, "caption": "Two cats.\n"},
                        {"image_id": 3, "id": 13, "caption": "  a brown dog"}]}


def test_coco_images_in_file_order_with_stripped_captions_in_annotation_order():
    assert parse_coco(json.dumps(COCO), "captions_val2017.json", "val2017") == [
        CaptionedImage("7", "val2017/000000000007.jpg", ("Two cats.",)),
        CaptionedImage("3", "val2017/000000000003.jpg", ("A dog on a sofa.", "a brown dog"))]
    assert [x.file_name for x in parse_coco(json.dumps(COCO), "f.json", "")] == ["000000000007.jpg",
                                                                                  "000000000003.jpg"]


def test_coco_errors_name_the_file_and_the_id():
    stray = dict(COCO, annotations=COCO["annotations"] + [{"image_id": 99, "id": 14, "caption": "x"}])
    with pytest.raises(ValueError, match=r"^captions_train2017\.json: annotation 14 refers to image id 99"):
        parse_coco(json.dumps(stray), "captions_train2017.json", "train2017")
    bare = dict(COCO, annotations=COCO["annotations"][:1])
    with pytest.raises(ValueError, match=r"^f\.json: image id 7 \(000000000007\.jpg\) has no caption"):
        parse_coco(json.dumps(bare), "f.json", "")
    twice = dict(COCO, images=COCO["images"] + COCO["images"][:1])
    with pytest.raises(ValueError, match=r"^f\.json: image id 7 occurs twice"):
        parse_coco(json.dumps(twice), "f.json", "")
    with pytest.raises(ValueError, match=r"^f\.json: malformed JSON"):
        parse_coco(json.dumps(COCO)[:-2], "f.json", "")
    with pytest.raises(ValueError, match=r"^f\.json: expected an 'annotations' list"):
        parse_coco(json.dumps({"images": []}), "f.json", "")
    with pytest.raises(ValueError, match=r"^f\.json: image 1 has no 'file_name' field"):
        parse_coco(json.dumps({"images": [{"id": 1}], "annotations": []}), "f.json", "")
    blank = dict(COCO, annotations=COCO["annotations"] + [{"image_id": 3, "id": 15, "caption": " \n"}])
    with pytest.raises(ValueError, match=r"^f\.json: annotation 15 of image id 3 has an empty caption"):
        parse_coco(json.dumps(blank), "f.json", "")


def _sentences(*raws):
    return [{"raw": r, "tokens": tokenize_caption(r), "imgid": 0, "sentid": i} for i, r in enumerate(raws)]


FLICKR = {"dataset": "flickr8k", "images": [
    {"filename": "10_a.jpg", "imgid": 0, "split": "test", "sentences": _sentences("A dog runs .", "Dog.")},
    {"filename": "11_b.jpg", "imgid": 1, "split": "train", "sentences": _sentences("Two kids play .")},
    {"filename": "12_c.jpg", "imgid": 2, "split": "val", "sentences": _sentences("A red car .")},
    {"filename": "13_d.jpg", "imgid": 3, "split": "train", "sentences": _sentences("A bird .")}]}
KARPATHY_COCO = {"dataset": "coco", "images": [
    {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "cocoid": 42,
     "split": "restval", "sentences": _sentences("a plate of food")},
    {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "imgid": 1, "cocoid": 9,
     "split": "train", "sentences": _sentences("a bowl", "two bowls")},
    {"filepath": "val2014", "filename": "COCO_val2014_000000000073.jpg", "imgid": 2, "cocoid": 73,
     "split": "restval", "sentences": _sentences("a motorbike")}]}


def test_karpathy_splits_labels_and_image_folders():
    text = json.dumps(FLICKR)
    ids = {split: [x.image_id for x in parse_karpathy(text, "d.json", split)]
           for split in ("train", "validation", "val", "test", "restval")}
    assert ids == {"train": ["11_b", "13_d"], "validation": ["12_c"], "val": ["12_c"], "test": ["10_a"],
                   "restval": []}
    assert parse_karpathy(text, "d.json", "test") == [
        CaptionedImage("10_a", "Flicker8k_Dataset/10_a.jpg", ("A dog runs .", "Dog."))]
    assert [x.file_name for x in parse_karpathy(text, "d.json", "val", image_dirs={"flickr8k": "Images"})] == \
        ["Images/12_c.jpg"]
    assert KARPATHY_IMAGE_DIRS["flickr30k"] == "flickr30k-images"
    coco = json.dumps(KARPATHY_COCO)
    assert [x.image_id for x in parse_karpathy(coco, "d.json", "train")] == ["9"]
    # train first, then restval, each in file order
    assert parse_karpathy(coco, "d.json", "train", include_restval=True) == [
        CaptionedImage("9", "train2014/COCO_train2014_000000000009.jpg", ("a bowl", "two bowls")),
        CaptionedImage("42", "val2014/COCO_val2014_000000000042.jpg", ("a plate of food",)),
        CaptionedImage("73", "val2014/COCO_val2014_000000000073.jpg", ("a motorbike",))]


def test_karpathy_errors():
    with pytest.raises(ValueError, match="include_restval applies to the train split only"):
        parse_karpathy(json.dumps(KARPATHY_COCO), "d.json", "test", include_restval=True)
    with pytest.raises(ValueError, match=r"split must be one of"):
        parse_karpathy(json.dumps(FLICKR), "d.json", "dev2")
    odd = {"dataset": "flickr8k", "images": [dict(FLICKR["images"][0], split="extra")]}
    with pytest.raises(ValueError, match=r"^d\.json: image 10_a\.jpg has split 'extra'"):
        parse_karpathy(json.dumps(odd), "d.json", "train")
    unknown = dict(FLICKR, dataset="mine")
    with pytest.raises(ValueError, match=r"^d\.json: image 11_b\.jpg has no 'filepath'.*image_dirs"):
        parse_karpathy(json.dumps(unknown), "d.json", "train")
    empty = {"dataset": "flickr8k", "images": [dict(FLICKR["images"][1], sentences=[])]}
    with pytest.raises(ValueError, match=r"^d\.json: image 11_b\.jpg has no caption"):
        parse_karpathy(json.dumps(empty), "d.json", "train")
    blank = {"dataset": "flickr8k", "images": [dict(FLICKR["images"][1], sentences=_sentences("A kid .", "  "))]}
    with pytest.raises(ValueError, match=r"^d\.json: image 11_b\.jpg has an empty caption \(sentence 1 of 2\)"):
        parse_karpathy(json.dumps(blank), "d.json", "train")
    with pytest.raises(ValueError, match=r"^d\.json: expected a JSON object with an 'images' list"):
        parse_karpathy("[]", "d.json", "train")


@pytest.mark.parametrize("text, words", [
    ("A man riding a wave on top of a surfboard.", ["a", "man", "riding", "a", "wave", "on", "top", "of", "a",
                                                     "surfboard"]),
    ("A man's hat, well-worn!", ["a", "man's", "hat", "well", "worn"]),
    ("  Two   dogs;\n'playing' (outside)  ", ["two", "dogs", "playing", "outside"]),
    ("The dogs' bowls: 2 of 3 rock'n'roll_fans", ["the", "dogs", "bowls", "2", "of", "3", "rock'n'roll", "fans"]),
    ("Ein Mädchen in Grün", ["ein", "mädchen", "in", "grün"]),
    ("...", []), ("", []),
])
def test_tokenize_caption_hand_cases(text, words):
    assert tokenize_caption(text) == words


def test_tokenize_caption_rejects_non_text():
    with pytest.raises(ValueError, match="text must be a str"):
        tokenize_caption(["a"])
