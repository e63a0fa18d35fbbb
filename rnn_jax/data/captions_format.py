"""Image-caption annotation files -> `CaptionedImage` lists (parsers: text in, no file system), and the
caption tokeniser.

Two formats:

* COCO captions (``annotations/captions_<split><year>.json``): ``{"images": [{"id", "file_name", ...}],
  "annotations": [{"image_id", "id", "caption"}], ...}``; `parse_coco`. COCO's ``file_name`` has no folder:
  the caller names the split's image folder (``train2017``), and `CaptionedImage.file_name` is
  ``train2017/000000391895.jpg``, relative to the dataset root.
* Karpathy's splits (``dataset_{coco,flickr8k,flickr30k}.json``, from "Deep Visual-Semantic Alignments",
  Karpathy & Fei-Fei 2015): ``{"dataset": name, "images": [{"filename", "filepath" (COCO only), "split",
  "imgid", "cocoid" (COCO only), "sentences": [{"raw", "tokens", ...}]}]}``; `parse_karpathy`. The split
  labels are train / val / test / restval (COCO's 30,504 images outside Karpathy's train/val/test; the usual
  113,287-image training set is train + restval).

Captions are kept as written (COCO's are stripped of surrounding whitespace: many end in a space or a newline);
`tokenize_caption` gives the lowercased word list used to build vocabularies.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Mapping, NamedTuple

from rnn_jax.data.splits import canonical_split

# image folder of each Karpathy dataset, relative to its root, for images without a "filepath" (the Flickr
# sets). "Flicker8k_Dataset" (sic) is the folder name in the official Flickr8k_Dataset.zip.
KARPATHY_IMAGE_DIRS = {"coco": "", "flickr8k": "Flicker8k_Dataset", "flickr30k": "flickr30k-images"}
KARPATHY_SPLITS = ("train", "val", "test", "restval")

# a word: letters or digits, with apostrophes inside ("man's", "rock'n'roll"); anything else separates words
_WORD = re.compile(r"[^\W_]+(?:'+[^\W_]+)*")


class CaptionedImage(NamedTuple):
    """One image and all its captions.

    Attributes:
      image_id: the dataset's id of the image (COCO ``id``/``cocoid``; Flickr: the file name's stem).
      file_name: the image's path relative to the dataset root, ``/``-separated (``train2017/000000391895.jpg``).
      captions: the captions as written (COCO's stripped of surrounding whitespace), in file order.
      data: the original image file's bytes (JPEG), when read from TFDS; else None.
      path: the image file's absolute path, when read from the files; else None.
    """

    image_id: str
    file_name: str
    captions: tuple[str, ...]
    data: bytes | None = None
    path: str | None = None


def tokenize_caption(text: str) -> list[str]:
    """Returns the caption's words (`list` of `str`), lowercased, punctuation dropped.

    A word is a maximal run of letters and digits (any script), apostrophes kept inside a word (``"man's"``,
    ``"don't"``); every other character (spaces, ``.,!?;:"-/()_`` and apostrophes at a word's edge, i.e.
    quotes) separates words. Karpathy's captioning preprocessing also lowercases and drops punctuation, but by
    deleting the characters (``"man's"`` -> ``"mans"``, ``"well-worn"`` -> ``"wellworn"``); here inner apostrophes
    stay and other punctuation separates: ``"A man's hat, well-worn."`` -> ``["a", "man's", "hat", "well", "worn"]``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _load_json(text: str, origin: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{origin}: malformed JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{origin}: expected a JSON object with an 'images' list")
    return data


def _field(record, key: str, origin: str, what: str):
    try:
        return record[key]
    except (KeyError, TypeError):
        raise ValueError(f"{origin}: {what} has no {key!r} field: {str(record)[:200]}") from None


def _join(folder: str, name: str) -> str:
    return str(PurePosixPath(folder, name)) if folder else name


def parse_coco(text: str, origin: str, image_dir: str) -> list[CaptionedImage]:
    """Returns the images of a COCO caption JSON (`list` of `CaptionedImage`) in its ``images`` order, each
    with its captions in ``annotations`` order, stripped of surrounding whitespace.

    Args:
      text: the JSON text.
      origin: the file's name, for error messages.
      image_dir: the split's image folder relative to the dataset root (``"val2017"``); ``""`` for none.

    Raises:
      ValueError: malformed JSON, a missing field, a duplicate image id, an annotation whose ``image_id`` is not
        among the images, an empty caption, or an image without captions (each names `origin` and the id).
    """
    data = _load_json(text, origin)
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise ValueError(f"{origin}: expected an 'annotations' list in the JSON object")
    order, names = [], {}
    for image in data["images"]:
        image_id = _field(image, "id", origin, "an image")
        if image_id in names:
            raise ValueError(f"{origin}: image id {image_id} occurs twice in 'images'")
        names[image_id] = _field(image, "file_name", origin, f"image {image_id}")
        order.append(image_id)
    captions = {image_id: [] for image_id in order}
    for ann in annotations:
        image_id = _field(ann, "image_id", origin, "an annotation")
        if image_id not in captions:
            raise ValueError(f"{origin}: annotation {ann.get('id')} refers to image id {image_id}, which is not "
                             "among the file's images")
        caption = str(_field(ann, "caption", origin, f"annotation {ann.get('id')}")).strip()
        if not caption:
            raise ValueError(f"{origin}: annotation {ann.get('id')} of image id {image_id} has an empty caption")
        captions[image_id].append(caption)
    for image_id in order:
        if not captions[image_id]:
            raise ValueError(f"{origin}: image id {image_id} ({names[image_id]}) has no caption")
    return [CaptionedImage(str(i), _join(image_dir, names[i]), tuple(captions[i])) for i in order]


def _karpathy_labels(split: str, include_restval: bool) -> tuple[str, ...]:
    if split == "restval":
        return ("restval",)
    label = {"train": "train", "validation": "val", "test": "test"}[canonical_split(split)]
    if include_restval and label != "train":
        raise ValueError(f"include_restval applies to the train split only, got split={split!r}")
    return ("train", "restval") if include_restval else (label,)


def _karpathy_image(image, origin: str, folder: str | None, dataset: str) -> CaptionedImage:
    filename = _field(image, "filename", origin, "an image")
    if "filepath" in image:
        file_name = _join(image["filepath"], filename)
    elif folder is None:
        raise ValueError(f"{origin}: image {filename} has no 'filepath' and dataset {dataset!r} has no image "
                         "folder in image_dirs; pass image_dirs={dataset: folder}")
    else:
        file_name = _join(folder, filename)
    sentences = _field(image, "sentences", origin, f"image {filename}")
    if not sentences:
        raise ValueError(f"{origin}: image {filename} has no caption")
    image_id = str(image["cocoid"]) if "cocoid" in image else PurePosixPath(filename).stem
    raws = tuple(str(_field(s, "raw", origin, f"a sentence of {filename}")) for s in sentences)
    if not all(r.strip() for r in raws):
        raise ValueError(f"{origin}: image {filename} has an empty caption (sentence "
                         f"{[r.strip() for r in raws].index('')} of {len(raws)})")
    return CaptionedImage(image_id, file_name, raws)


def parse_karpathy(text: str, origin: str, split: str, *, include_restval: bool = False,
                   image_dirs: Mapping[str, str] = KARPATHY_IMAGE_DIRS) -> list[CaptionedImage]:
    """Returns one split of a Karpathy ``dataset_*.json`` (`list` of `CaptionedImage`, file order), captions
    from the ``raw`` sentences.

    Args:
      text: the JSON text.
      origin: the file's name, for error messages.
      split: train / validation (val, dev) / test, or ``"restval"`` (COCO's remaining images).
      include_restval: train only: the train images, then the restval images (each part in file order), the
        usual 113,287-image COCO training set.
      image_dirs: image folder by the JSON's ``dataset`` name (default `KARPATHY_IMAGE_DIRS`), for images
        without a ``filepath``; ``file_name`` is ``filepath/filename`` when there is one.

    Raises:
      ValueError: a bad split, malformed JSON, a missing field, an unknown split label, an empty caption, or an
        image without sentences (each names `origin` and the image).
    """
    labels = _karpathy_labels(split, include_restval)
    data = _load_json(text, origin)
    dataset = str(data.get("dataset", ""))
    folder = image_dirs.get(dataset)
    chosen = {label: [] for label in labels}
    for image in data["images"]:
        label = _field(image, "split", origin, f"image {image.get('filename') if isinstance(image, dict) else image}")
        if label not in KARPATHY_SPLITS:
            raise ValueError(f"{origin}: image {image.get('filename')} has split {label!r}, expected one of "
                             f"{KARPATHY_SPLITS}")
        if label in chosen:
            chosen[label].append(_karpathy_image(image, origin, folder, dataset))
    return [item for label in labels for item in chosen[label]]
