"""Split readers of image-caption datasets: COCO-MINI (the staged default), the full COCO captions, and
Karpathy's COCO / Flickr8k / Flickr30k splits; image decoding and precomputed image features.

A dataset root is read in place (see `rnn_jax.data.files.captions_root`): COCO's layout
(``annotations/captions_{train,val}{2017,2014}.json`` + ``{train,val}{2017,2014}/``) or Karpathy's
(``dataset_<name>.json`` + the image folder, `captions_format.KARPATHY_IMAGE_DIRS`), or the TFDS dataset
``image_captions`` (configs ``coco`` / ``karpathy``) prepared from one. COCO-MINI: 80 train / 79 validation
images, 5 captions each (captioning/SOURCE.md). Images stay as their original JPEG files; `decode_image`
resizes in memory only (the images' licences forbid redistributing resized copies).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from rnn_jax.data import files
from rnn_jax.data.captions_format import CaptionedImage, parse_coco, parse_karpathy


def _read_files(split: str, root: Path, layout: str, dataset: str | None, verify: bool,
                include_restval: bool) -> list[CaptionedImage]:
    if layout == "coco" and include_restval:
        raise ValueError("include_restval applies to the Karpathy layout only, got layout='coco'")
    path, image_dir = files.coco_captions_file(root, split) if layout == "coco" else \
        (files.karpathy_file(root, dataset), None)
    if verify:
        files.verify_file(path)
    text = files.read_text(path)
    items = parse_coco(text, str(path), image_dir) if image_dir is not None else \
        parse_karpathy(text, str(path), split, include_restval=include_restval)
    return [item._replace(path=str(root / item.file_name)) for item in items]


def _tfds_config(layout: str, dataset: str | None, data_dir) -> str:
    """Returns the ``image_captions`` config for `layout`; "auto" looks at the local copy when there is one."""
    if layout != "auto" or dataset is not None:  # decided by the arguments (checked); no file is looked at
        return files.captions_layout(Path(), layout, dataset)
    try:
        return files.captions_layout(files.captions_root(data_dir))
    except FileNotFoundError:  # no (recognisable) local copy: a prepared dataset may still exist
        return "coco"


def _read_tfds(split: str, config: str, tfds_dir, data_dir, include_restval: bool) -> list[CaptionedImage]:
    from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
    kwargs = dict(config=config, tfds_dir=tfds_dir, data_dir=data_dir)
    splits = [split]
    if include_restval:
        if config != "karpathy" or split != "train":
            raise ValueError(f"include_restval applies to the Karpathy layout's train split only, got "
                             f"config={config!r}, split={split!r}")
        info = tfds_builders.data_source("image_captions", split, **kwargs).dataset_info
        splits += ["restval"] if "restval" in info.splits else []  # Flickr has none (TFDS keeps no empty split)
    records = [r for s in splits for r in tfds_builders.read_records("image_captions", s, binary=("image",),
                                                                      **kwargs)]
    return [CaptionedImage(r["image_id"], r["file_name"], tuple(r["captions"]), data=r["image"]) for r in records]


def read_captions(split: str, *, data_dir: str | os.PathLike | None = None, layout: str = "auto",
                  dataset: str | None = None, source: str = "auto", tfds_dir: str | os.PathLike | None = None,
                  verify: bool = False, include_restval: bool = False) -> list[CaptionedImage]:
    """Returns a split's images with their captions (`list` of `CaptionedImage`), in the annotation file's order.

    From the files each item has ``path`` (the image's absolute path) and ``data`` None; from TFDS, ``data``
    (the JPEG bytes) and ``path`` None. `image_bytes` gives the bytes either way.

    Args:
      split: train / validation (val, dev) / test (Karpathy's layout only), or ``"restval"`` (Karpathy's COCO).
      data_dir: the dataset root, or a data root holding ``captioning/coco-mini``; None: ``$RNN_JAX_DATA``, i.e.
        the staged COCO-MINI (`files.captions_root`).
      layout: ``"coco"``, ``"karpathy"`` or ``"auto"`` (`files.captions_layout`); the TFDS config of the same name.
      dataset: Karpathy's ``coco`` / ``flickr8k`` / ``flickr30k`` (which ``dataset_<name>.json``); None: the only
        one in the root. With TFDS the prepared copy's own file counts.
      source: ``"files"``, ``"tfds"`` or ``"auto"`` (`files.resolve_source`: files when a data root is set).
      tfds_dir: where the TFDS dataset is (or is prepared, from the local copy; never downloaded).
      verify: check the annotation file's sha256 where one is recorded (COCO-MINI's, `files.SHA256`).
      include_restval: Karpathy's train split followed by its restval images (the 113,287-image COCO set).

    Raises:
      ValueError: a bad argument or a malformed annotation file (names the file and the image id).
      FileNotFoundError: no data root, or the root lacks the split's file (names the paths tried).
    """
    split = files.captions_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        return _read_tfds(split, _tfds_config(layout, dataset, data_dir), tfds_dir, data_dir, include_restval)
    root = files.captions_root(data_dir)
    return _read_files(split, root, files.captions_layout(root, layout, dataset), dataset, verify, include_restval)


def image_bytes(example: CaptionedImage) -> bytes:
    """Returns the image file's bytes: ``example.data`` if set, else the bytes of the file at ``example.path``."""
    if example.data is not None:
        return example.data
    if example.path is None:
        raise ValueError(f"example must have data or path, got neither for image {example.image_id!r}")
    path = Path(example.path)
    if not path.is_file():
        raise FileNotFoundError(f"image {example.image_id} ({example.file_name}): {path} does not exist")
    return path.read_bytes()


def load_image(example: CaptionedImage, size: int) -> np.ndarray:
    """Returns an example's image decoded as in `decode_image`, ``[size, size, 3]`` float32 in [0, 1].

    Raises:
      FileNotFoundError / ValueError: as `image_bytes` and `decode_image`, naming the image id and its file.
    """
    return decode_image(image_bytes(example), size,
                        origin=f"image {example.image_id} ({example.path or example.file_name})")


def decode_image(data: bytes, size: int, *, origin: str = "") -> np.ndarray:
    """Returns the decoded image as ``[size, size, 3]`` float32 RGB in [0, 1] (pixel values / 255).

    Decoded with PIL and converted to RGB (greyscale, palette, CMYK, alpha dropped), then resized in memory so
    that its shorter side is `size` (the longer side rounded to the nearest pixel; PIL's bilinear filter, which
    widens with the scale so shrinking averages, i.e. antialiases) and center-cropped to ``size x size`` (the
    crop starts at ``(longer - size) // 2``). Nothing is written to disk.

    Args:
      data: an image file's bytes.
      size: the output's side.
      origin: where `data` comes from (an image id, a file), named in errors.

    Raises:
      ValueError: `size` is not a positive int, or `data` is not an image PIL can decode (unreadable,
        truncated, or too large for PIL's decompression-bomb limit); names `origin`.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    try:
        image = Image.open(io.BytesIO(data))
        image = image.convert("RGB")
    except (OSError, TypeError, ValueError, Image.DecompressionBombError) as e:
        where = f"{origin}: " if origin else ""
        got = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
        raise ValueError(f"{where}data must hold an image file PIL can decode (JPEG, PNG, ...), got {got}: "
                         f"{e}") from None
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)  # [size, size, 3]


def load_features(features_dir: str | os.PathLike, file_name: str) -> np.ndarray:
    """Returns an image's precomputed features as float32 ``[D]`` (one vector) or ``[S, D]`` (S regions or grid
    cells; an ``[h, w, D]`` grid comes back as ``[h*w, D]``, row-major).

    Args:
      features_dir: the folder of ``.npy`` files, one per image, named by the image file's stem
        (``train2017/000000391895.jpg`` -> ``features_dir/000000391895.npy``).
      file_name: the image's file name (`CaptionedImage.file_name`) or path.

    The file is read with ``allow_pickle=False``: an object array (which would unpickle, i.e. run code) is
    refused.

    Raises:
      FileNotFoundError: the ``.npy`` file does not exist (names it and the image).
      ValueError: the file is not a plain numeric ``.npy`` array (an object array, a truncated or other file),
        or its rank is not 1, 2 or 3 (names the file and the dtype or shape).
    """
    path = Path(features_dir) / f"{Path(file_name).stem}.npy"
    if not path.is_file():
        raise FileNotFoundError(f"no features for image {file_name}: {path} does not exist (expected one .npy per "
                                "image, named by the image file's stem)")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"features of image {file_name}: {path} is not a plain .npy array of numbers ({e})") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"features in {path} must be numbers, got dtype "
                         f"{getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim not in (1, 2, 3):
        raise ValueError(f"features in {path} must have shape [D], [S, D] or [h, w, D], got shape {array.shape}")
    if array.ndim == 3:
        array = array.reshape(-1, array.shape[-1])  # [h*w, D]
    return array.astype(np.float32, copy=False)
