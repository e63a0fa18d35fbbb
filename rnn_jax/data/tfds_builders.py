"""TFDS dataset builders for the corpora, prepared as ``array_record`` and read back without TensorFlow.

tensorflow-datasets 4.9.10 prepares a `tfds.core.GeneratorBasedBuilder` with ``file_format='array_record'``
without TensorFlow as long as the builder's own code does not use ``tf`` (the stock ``tiny_shakespeare``
builder calls ``tf.io.gfile`` and so needs TensorFlow to *prepare*; reading any prepared copy never does).
These builders read with plain Python:

* ``tiny_shakespeare``: ``text``, the whole split (``input.txt`` cut as TFDS does); 1 / 1 / 1 examples.
* ``ptb_word``: ``text``, one line with words joined by single spaces; 42,068 / 3,370 / 3,761 examples.
* ``ptb_char``: ``text``, one decoded line (`text_format.decode_ptb_char_line`); 42,068 / 3,370 / 3,761 examples.
* ``sst``: ``tree`` (the PTB-style line), ``sentence`` (leaves joined by spaces), ``label`` (root, 0-4);
  8,544 / 1,101 / 2,210 examples.
* ``ud_english_ewt``, configs ``2.16`` (default) and ``2.2``: ``conllu`` (one sentence's raw CoNLL-U block,
  comments and multiword/empty-node lines included, without the closing blank line), ``sent_id``;
  12,544 / 2,001 / 2,077 (2.16) and 12,543 / 2,002 / 2,077 (2.2) examples. Joining the blocks
  (`conllu_format.join_blocks`) gives the release file back byte for byte.
* ``multi30k``, configs ``tok`` (default: lowercased, Moses-tokenised) and ``raw``: ``en``, ``de`` (one
  aligned line each); splits train / validation / test (= test_2016_flickr) / test_2017_flickr /
  test_2017_mscoco / test_2018_flickr: 29,000 / 1,014 / 1,000 / 1,000 / 461 / 1,071 examples.
* ``image_captions``, configs ``coco`` (default: ``annotations/captions_{train,val}<year>.json``) and ``karpathy``
  (``dataset_<name>.json``): ``image_id``, ``file_name`` (relative to the dataset root), ``image`` (the
  original image file's bytes, a scalar ``tf.string``-typed `tfds.features.Tensor`: stored and read back byte
  for byte without TensorFlow, never decoded), ``captions`` (a `tfds.features.Sequence` of `Text`, all of an
  image's captions in file order); splits train / validation (COCO-MINI: 80 / 79 examples), plus test and
  restval (when it has images) for ``karpathy``. Its manual_dir is a captioning *dataset root* or a data root
  holding ``captioning/coco-mini`` (`files.captions_root`); there is no download (COCO's licences): without a
  local copy it raises FileNotFoundError saying where to get COCO. One dataset root per ``tfds_dir``: a
  prepared copy is reused whichever root it came from.

Examples keep file order (``disable_shuffling``). Each builder reads the local copy given as the
download config's ``manual_dir`` (a data root as in `rnn_jax.data.files.locate`: the staged
``../shared/data``, or the extracted official archive) and checks its sha256; without one it downloads
the official source with TFDS's download manager (no TensorFlow needed), extracts archives itself
(TFDS's extractor writes through ``tf.io.gfile`` and fails without TensorFlow), then checks the same
sha256. ``TinyShakespeare`` writes the same dataset as the stock TFDS builder, under the stock name and
byte for byte (tests/data/test_tfds_builders.py); it is not registered, to leave the stock one in place.
The others register as ``ptb_word``, ``ptb_char``, ``sst``, ``ud_english_ewt``, ``multi30k`` and
``image_captions`` when this module is imported. A dataset with configs is prepared under
``tfds_dir/name/config/1.0.0`` (the ``config`` argument).

Typical use: `read_records(name, split, tfds_dir=..., data_dir=...)`, which prepares on first use.

Layering: this module imports only the bottom layer (the parsers `text_format`, `sst_format`,
`conllu_format`, `translation_format` and `captions_format`, `files`, `splits`); the split readers `text`, `sst`,
`ud`, `multi30k` and `captions` import it, never the reverse.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from rnn_jax.data import captions_format, conllu_format, files, sst_format, text_format, translation_format
from rnn_jax.data.splits import SPLITS, canonical_split

_TINY_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
_PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
_SST_URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
# the release tag's plain files, e.g. .../r2.16/en_ewt-ud-train.conllu
_UD_URL = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r{version}/{name}"
# the repository's files by path, e.g. .../data/task1/raw/train.en.gz, .../data/task1/tok/val.lc.norm.tok.de
_MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/{path}"

_MANUAL = ("Point the download config's manual_dir (the data_dir argument of rnn_jax.data.tfds_builders.prepare, or "
           "$RNN_JAX_DATA) at a folder holding {what} (the staged ../shared/data works); otherwise the builder "
           "downloads {url}.")


def _local_root(dl_manager) -> Path | None:
    """Returns the manual dir if one was configured and exists, else None (then download the official source)."""
    try:
        return Path(dl_manager.manual_dir)
    except (AssertionError, ValueError):  # not configured, missing or empty
        return None


def _extract(archive: Path) -> Path:
    """Returns a folder holding the archive's files, extracted once next to it with the standard library.

    TFDS's own extractor (``dl_manager.download_and_extract``) writes through ``tf.io.gfile`` and fails
    without TensorFlow ("ExtractError: ... No module named 'tensorflow'"); downloading does not.
    """
    out = archive.with_name(archive.name + ".extracted")
    if out.is_dir():
        return out
    tmp = archive.with_name(f"{archive.name}.extracting-{uuid.uuid4().hex}")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
    else:
        with tarfile.open(archive, "r:*") as t:
            if hasattr(tarfile, "data_filter"):  # refuses absolute paths, links out of the folder, devices
                t.extractall(tmp, filter="data")
            else:
                t.extractall(tmp)
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _locate(dl_manager, relpath: str, alternatives=(), url: str = "", archive: bool = True,
            fetched_as: str | None = None) -> Path:
    """Returns the path of a source file: from the manual dir (the local copy) if it holds it, else downloaded
    from `url` (and extracted when `archive`); its sha256 is checked either way (a plain download against
    the checksum recorded for `fetched_as`, default `relpath`)."""
    root = _local_root(dl_manager)
    if root is not None:  # a configured local copy that lacks the file is an error, never a silent download
        return files.locate(relpath, root, alternatives=alternatives, verify=True)
    fetched = Path(dl_manager.download(url))
    if not archive:
        expected = files.expected_sha256(fetched_as or relpath)
        if expected is None:
            raise ValueError(f"no sha256 is recorded for {fetched_as or relpath}; refusing an unchecked download")
        files.verify_file(fetched, expected)
        return fetched
    return files.locate(relpath, _extract(fetched), alternatives=alternatives, verify=True)


class TinyShakespeare(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """tiny_shakespeare 1.0.0 as the stock TFDS builder writes it (``{'text'}``, one example per split),
    prepared without TensorFlow from a local ``input.txt`` or the official URL."""

    name = "tiny_shakespeare"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="charlm/tinyshakespeare/input.txt", url=_TINY_URL)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            supervised_keys=None,
            homepage="https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt")

    def _split_generators(self, dl_manager):
        path = _locate(dl_manager, files.TINY_SHAKESPEARE, url=_TINY_URL, archive=False)
        splits = text_format.split_like_tfds(files.read_text(path))
        return {name: self._generate_examples(name, t) for name, t in splits.items()}

    def _generate_examples(self, split_key, split_text):
        yield split_key, {"text": split_text}


class _PtbBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """One example per line of Mikolov's PTB files (``{'text'}``), in file order."""

    VERSION = tfds.core.Version("1.0.0")
    LEVEL = "word"

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            supervised_keys=None, disable_shuffling=True,
            homepage="https://www.fit.vutbr.cz/~imikolov/rnnlm/")

    def _split_generators(self, dl_manager):
        out = {}
        for split in SPLITS:
            relpath, alternatives = files.ptb_relpath(split, self.LEVEL)
            path = _locate(dl_manager, relpath, alternatives, url=_PTB_URL)
            out[split] = self._generate_examples(path)
        return out

    def _generate_examples(self, path):
        for i, line in enumerate(text_format.parse_ptb(files.read_text(path), self.LEVEL)):
            yield i, {"text": line}


class PtbWord(_PtbBuilder):
    """ptb_word: Mikolov's word-level Penn Treebank, one sentence per example (no ``<eos>``)."""

    LEVEL = "word"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="charlm/ptb/ptb.{train,valid,test}.txt.gz", url=_PTB_URL)


class PtbChar(_PtbBuilder):
    """ptb_char: Mikolov's character-level Penn Treebank, decoded (``_`` -> space), one line per example."""

    LEVEL = "char"
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="charlm/ptb/ptb.char.{train,valid,test}.txt.gz",
                                                  url=_PTB_URL)


class Sst(tfds.core.GeneratorBasedBuilder):
    """sst: Stanford Sentiment Treebank trees, one sentence per example: the tree, its tokens, its root label."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="sentiment/sst/{train,dev,test}.txt", url=_SST_URL)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "tree": tfds.features.Text(),
                "sentence": tfds.features.Text(),
                "label": tfds.features.ClassLabel(num_classes=5)}),
            supervised_keys=("sentence", "label"), disable_shuffling=True,
            homepage="https://nlp.stanford.edu/sentiment/")

    def _split_generators(self, dl_manager):
        out = {}
        for split in SPLITS:
            relpath, alternatives = files.sst_relpath(split)
            path = _locate(dl_manager, relpath, alternatives, url=_SST_URL)
            out[split] = self._generate_examples(sst_format.tree_lines(files.read_text(path), str(path)), str(path))
        return out

    def _generate_examples(self, lines, origin):
        for i, (line, tree) in enumerate(zip(lines, sst_format.parse_trees(lines, origin))):
            yield i, {"tree": line, "sentence": " ".join(tree.leaves()), "label": tree.label}


class UdEnglishEwt(tfds.core.GeneratorBasedBuilder):
    """ud_english_ewt: Universal Dependencies English EWT, one sentence per example as its raw CoNLL-U block
    (so predictions can be written back into the file, `conllu_format.replace_tags`); configs by UD release."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=v, description=f"UD English EWT, release r{v}")
                       for v in files.UD_VERSIONS]
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="pos/ud-<version>/en_ewt-ud-{train,dev,test}.conllu.gz",
                                                  url=_UD_URL)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"conllu": tfds.features.Text(), "sent_id": tfds.features.Text()}),
            supervised_keys=None, disable_shuffling=True,
            homepage="https://universaldependencies.org/treebanks/en_ewt/")

    def _split_generators(self, dl_manager):
        version, out = self.builder_config.name, {}
        for split in SPLITS:
            relpath, alternatives = files.ud_relpath(split, version)
            plain = alternatives[0]  # what the release serves
            url = _UD_URL.format(version=version, name=Path(plain).name)
            path = _locate(dl_manager, relpath, alternatives, url=url, archive=False, fetched_as=plain)
            out[split] = self._generate_examples(files.read_text(path), str(path))
        return out

    def _generate_examples(self, text, origin):
        for i, block in enumerate(conllu_format.iter_sentence_blocks(text, origin)):
            yield i, {"conllu": block.text, "sent_id": block.sent_id or ""}


class Multi30k(tfds.core.GeneratorBasedBuilder):
    """multi30k: Multi30k task 1 English-German sentence pairs (WMT16-18 multimodal translation, text only);
    configs ``tok`` (lowercased, normalised, Moses-tokenised) and ``raw``."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="tok", description="data/task1/tok/*.lc.norm.tok.{en,de}"),
                       tfds.core.BuilderConfig(name="raw", description="data/task1/raw/*.{en,de}.gz")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(what="translation/multi30k/{raw,tok}/", url=_MULTI30K_URL)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({lang: tfds.features.Text() for lang in files.MULTI30K_LANGUAGES}),
            supervised_keys=("en", "de"), disable_shuffling=True,
            homepage="https://github.com/multi30k/dataset")

    def _split_generators(self, dl_manager):
        tokenized, out = self.builder_config.name == "tok", {}
        for split in files.MULTI30K_STEMS:
            texts = {}
            for lang in files.MULTI30K_LANGUAGES:
                relpath, alternatives = files.multi30k_relpath(split, lang, tokenized)
                official = alternatives[-1]  # data/task1/...
                path = _locate(dl_manager, relpath, alternatives, url=_MULTI30K_URL.format(path=official),
                               archive=False, fetched_as=official)
                texts[lang] = (files.read_text(path), str(path))
            (en, en_origin), (de, de_origin) = texts["en"], texts["de"]
            out[split] = self._generate_examples(translation_format.parallel_lines(en, de, en_origin, de_origin))
        return out

    def _generate_examples(self, pairs):
        for i, (en, de) in enumerate(pairs):
            yield i, {"en": en, "de": de}


class ImageCaptions(tfds.core.GeneratorBasedBuilder):
    """image_captions: images (the original file bytes) with all their captions, from a local dataset root in
    COCO's layout (config ``coco``) or Karpathy's (config ``karpathy``); never downloaded."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="coco", description="annotations/captions_{train,val}<year>.json + images"),
        tfds.core.BuilderConfig(name="karpathy", description="Karpathy's dataset_<name>.json splits + images")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Point the download config's manual_dir (the data_dir argument of rnn_jax.data.tfds_builders.prepare, or "
        f"$RNN_JAX_DATA) at a captioning dataset root, or at a data root holding {files.COCO_MINI} (the staged "
        "../shared/data works). There is no download. " + files.COCO_HINT)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image_id": tfds.features.Text(),
                "file_name": tfds.features.Text(),
                "image": tfds.features.Tensor(shape=(), dtype=np.object_),  # raw bytes, no TensorFlow needed
                "captions": tfds.features.Sequence(tfds.features.Text())}),
            supervised_keys=None, disable_shuffling=True, homepage="https://cocodataset.org/")

    def _split_generators(self, dl_manager):
        local = _local_root(dl_manager)
        if local is None:
            raise FileNotFoundError("image_captions has no download: pass data_dir=<a captioning dataset root> to "
                                    f"prepare (or set ${files.ENV_VAR}). " + files.COCO_HINT)
        root = files.captions_root(local)
        if files.captions_layout(root, self.builder_config.name) == "coco":
            splits = {}
            for split in ("train", "validation"):
                path, image_dir = files.coco_captions_file(root, split)
                files.verify_file(path)
                splits[split] = captions_format.parse_coco(files.read_text(path), str(path), image_dir)
        else:
            path = files.karpathy_file(root)
            files.verify_file(path)
            text = files.read_text(path)
            splits = {split: captions_format.parse_karpathy(text, str(path), split)
                      for split in (*SPLITS, "restval")}
        # TFDS cannot write an empty split (Flickr's Karpathy files have no restval)
        return {split: self._generate_examples(root, items) for split, items in splits.items() if items}

    def _generate_examples(self, root, items):
        for i, item in enumerate(items):
            yield i, {"image_id": item.image_id, "file_name": item.file_name, "captions": list(item.captions),
                      "image": (root / item.file_name).read_bytes()}


BUILDERS = {"tiny_shakespeare": TinyShakespeare, "ptb_word": PtbWord, "ptb_char": PtbChar, "sst": Sst,
            "ud_english_ewt": UdEnglishEwt, "multi30k": Multi30k, "image_captions": ImageCaptions}
# a dataset's split name from a caller's (aliases); SPLITS' aliases unless listed
_SPLIT_NAME = {"multi30k": files.multi30k_split, "image_captions": files.captions_split}


def _builder_class(name: str, config: str | None) -> tuple[type, str | None]:
    """Returns the builder class of `name` and its config name (the first config when None; None when the
    builder has no configs); ValueError for an unknown name or config."""
    try:
        cls = BUILDERS[name]
    except KeyError:
        raise ValueError(f"name must be one of {sorted(BUILDERS)}, got {name!r}") from None
    configs = [c.name for c in cls.BUILDER_CONFIGS]
    if not configs:
        if config is not None:
            raise ValueError(f"config must be None for {name} (it has no configs), got {config!r}")
        return cls, None
    if config is None:
        return cls, configs[0]
    if config not in configs:
        raise ValueError(f"config must be one of {configs} for {name}, got {config!r}")
    return cls, config


def prepare(name: str, *, tfds_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
            config: str | None = None) -> tfds.core.DatasetBuilder:
    """Prepares dataset `name` as array_record under ``tfds_dir/name[/config]/1.0.0`` (if not yet there);
    returns the builder.

    Args:
      name: a key of `BUILDERS`.
      tfds_dir: where the prepared dataset goes (writable; never the read-only data root).
      data_dir: the local copy's root (see `files.data_root`; None: ``$RNN_JAX_DATA``). Only with neither is
        the official source downloaded; a configured root that lacks the files raises FileNotFoundError.
      config: the builder config of a dataset that has configs (``ud_english_ewt``: ``"2.16"`` / ``"2.2"``,
        ``multi30k``: ``"tok"`` / ``"raw"``, ``image_captions``: ``"coco"`` / ``"karpathy"``); None: its first config.
        ``image_captions`` takes a captioning dataset root as `data_dir` too (see `files.captions_root`).
    """
    cls, config = _builder_class(name, config)
    root = files.data_root(data_dir)
    if root is not None and not root.is_dir():
        raise FileNotFoundError(f"the data directory {root} (from the data_dir argument or ${files.ENV_VAR}) does "
                                "not exist; point it at the folder holding charlm/ and sentiment/, or leave both "
                                "unset to download the official source")
    kwargs = {"config": config} if config is not None else {}
    builder = cls(data_dir=os.fspath(tfds_dir), file_format="array_record", **kwargs)
    config = tfds.download.DownloadConfig(manual_dir=os.fspath(root) if root is not None else None)
    builder.download_and_prepare(download_config=config)
    return builder


def _prepared_dir(base: Path, name: str, config: str | None = None) -> Path | None:
    path = base / name / (config or "") / str(BUILDERS[name].VERSION)
    return path if (path / "dataset_info.json").is_file() else None


def data_source(name: str, split: str, *, tfds_dir: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None, download: bool = True, config: str | None = None):
    """Returns the TFDS random-access data source (``ArrayRecordDataSource``) of one split, no TensorFlow.

    Looks for a prepared copy (of `config`, see `prepare`) in `tfds_dir`, then in ``<data root>/tfds``
    (read-only staged copies such as tiny_shakespeare), then (only when `tfds_dir` is None) in the TFDS default
    folder (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); if none and `download`, prepares `name` into
    `tfds_dir` (or the default folder) from the local copy under the data root, or else from the official source.
    """
    _, config = _builder_class(name, config)
    split = _SPLIT_NAME.get(name, canonical_split)(split)
    root = files.data_root(data_dir)
    default_dir = Path(os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))
    bases = [Path(tfds_dir)] if tfds_dir is not None else []
    if root is not None:
        bases.append(root / "tfds")
    if tfds_dir is None:
        bases.append(default_dir)
    for base in bases:
        found = _prepared_dir(base, name, config)
        if found is not None:
            return tfds.builder_from_directory(os.fspath(found)).as_data_source(split=split)
    if not download:
        raise FileNotFoundError(f"dataset {name} is not prepared in any of {[str(b) for b in bases]} and "
                                "download=False")
    builder = prepare(name, tfds_dir=tfds_dir if tfds_dir is not None else default_dir, data_dir=data_dir,
                      config=config)
    return builder.as_data_source(split=split)


def read_records(name: str, split: str, *, binary: tuple[str, ...] = (), **kwargs) -> list[dict]:
    """Returns every example of one split as dicts with `str` text fields (decoded UTF-8; a sequence of texts as
    a `list` of `str`), int labels, and the `binary` fields (e.g. ``("image",)``) as `bytes`, undecoded.

    `kwargs` (tfds_dir, data_dir, download, config) go to `data_source`.
    """
    source = data_source(name, split, **kwargs)
    records = source.__getitems__(list(range(len(source)))) if len(source) else []
    return [{k: v if k in binary else _plain(v) for k, v in r.items()} for r in records]


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (int, np.integer)):
        return int(value)
    return value
