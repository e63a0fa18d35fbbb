"""The captioning experiment end to end on its smoke config (COCO-MINI's first 8 images of each split):
learning, selection by validation BLEU-4, greedy and beam captions of bounded length that end at
end-of-sentence, the files and plots, the precomputed-features path, and a stopped run resuming exactly."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments import captioning
from experiments.configs import captioning as configs
from rnn_jax import training
from tests.data import requires_data
from tests.experiments.common import crash_then_resume, smoke_config

pytestmark = requires_data


def smoke(variant="smoke", **overrides):
    # 2 steps per epoch, a checkpoint at every step, so a resume starts mid-epoch
    return smoke_config(configs, variant, **{"save_every": 1, **overrides})


class RecordingWriter(captioning.CaptionWriter):
    """Keeps the end-of-run token arrays of each split for the tests (splits come in `SPLITS` order)."""

    seen = []

    def split(self, *args):
        out = super().split(*args)
        RecordingWriter.seen.append(out)
        return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cap")
    mp = pytest.MonkeyPatch()
    mp.setattr(captioning, "CaptionWriter", RecordingWriter)
    try:
        results = captioning.train_and_evaluate(smoke(epochs=4), workdir)
    finally:
        mp.undo()
    return workdir, results, dict(zip(captioning.SPLITS, RecordingWriter.seen))


def test_trains_selects_by_validation_bleu4_and_writes_captions_and_scores(run):
    workdir, results, _ = run
    series = training.read_metrics(workdir)
    nll = series["valid_nll"][1]  # per-batch training losses are noisy on 4 images; the dev set is fixed
    assert nll[-1] < nll[0], nll
    bleu4 = dict(zip(*series["valid_bleu4"]))
    assert bleu4[results["selected_step"]] == max(bleu4.values())
    for name in ("train", "valid"):
        rows = json.loads((workdir / f"captions_{name}.json").read_text(encoding="utf-8"))
        assert len(rows) == 8 and len({r["image_id"] for r in rows}) == 8
        for mode in ("greedy", "beam"):
            scores = results["final"][name][mode]
            assert {"bleu1", "bleu2", "bleu3", "bleu4", "cider_d"} <= set(scores)
            assert 0.0 <= scores["bleu4"] <= scores["bleu1"] <= 100.0
    # the loop's greedy BLEU-4 of the selected checkpoint is what the end-of-run greedy captions score
    assert results["final"]["valid"]["greedy"]["bleu4"] == pytest.approx(results["valid"]["bleu4"])
    assert (workdir / "captions_valid.png").exists() and (workdir / "attention_valid_0.png").exists()
    assert results["note"].startswith("8 training and 8 validation images: too few for a benchmark")


def test_captions_are_bounded_and_end_at_eos_then_pad(run):
    workdir, _, seen = run
    task = captioning.CaptioningTask(smoke(), workdir)
    rows = json.loads((workdir / "captions_valid.json").read_text(encoding="utf-8"))
    greedy, beam, alphas = seen["valid"]
    for tokens, mode in ((greedy, "greedy"), (beam, "beam")):
        for row, entry in zip(tokens, rows):
            ids = [int(i) for i in row]
            assert len(ids) == smoke().max_decode_len
            if task.vocab.eos_id in ids:  # after eos only padding; the written caption stops before eos
                end = ids.index(task.vocab.eos_id)
                assert all(i == task.vocab.pad_id for i in ids[end + 1:])
            else:  # the length rule ended it
                end = len(ids)
            assert entry[mode] == " ".join(task.vocab.decode(ids[:end], skip_special=True))
    # the attention behind each emitted beam token sums to 1 over the grid
    for row, weights in zip(beam, alphas):
        ids = [int(i) for i in row]
        n = ids.index(task.vocab.eos_id) + 1 if task.vocab.eos_id in ids else len(ids)
        np.testing.assert_allclose(np.asarray(weights)[:n].sum(-1), 1.0, atol=1e-5)


def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(run, tmp_path, monkeypatch):
    workdir, results, _ = run
    monkeypatch.setattr(captioning.CaptioningTask, "artifacts", lambda self, params, workdir, results: {})
    resumed = crash_then_resume(captioning, "CaptioningTask", smoke(epochs=4), tmp_path, 5, monkeypatch)
    assert training.read_metrics(tmp_path)["train_loss"] == training.read_metrics(workdir)["train_loss"]
    assert resumed["valid"]["loss"] == results["valid"]["loss"]
    assert resumed["valid"]["bleu4"] == results["valid"]["bleu4"]


def test_precomputed_features_path_trains_both_decoders(tmp_path):
    images = {name: captioning.read_split(smoke(), name) for name in captioning.SPLITS}
    rng = np.random.default_rng(0)
    grid, vector = tmp_path / "grid", tmp_path / "vector"
    grid.mkdir(), vector.mkdir()
    for im in images["train"] + images["valid"]:
        stem = Path(im.file_name).stem
        np.save(grid / f"{stem}.npy", rng.normal(size=(2, 3, 6)).astype(np.float32))  # an h x w x D grid
        np.save(vector / f"{stem}.npy", rng.normal(size=(6,)).astype(np.float32))
    for decoder, folder, reg in (("show_attend_tell", grid, 1.0), ("show_tell", vector, 0.0)):
        config = smoke("features,smoke", decoder=decoder, features_dir=str(folder), attention_reg=reg, save_every=None)
        task = captioning.CaptioningTask(config, tmp_path / decoder)
        assert task.inputs["train"].shape[1:] == ((6, 6) if folder == grid else (6,))
        results = captioning.train_and_evaluate(config, tmp_path / decoder)
        nll = training.read_metrics(tmp_path / decoder)["valid_nll"][1]
        assert nll[-1] < nll[0], (decoder, nll)
        assert len(json.loads((tmp_path / decoder / "captions_valid.json").read_text())) == 8
        assert not list((tmp_path / decoder).glob("captions_*.png"))  # features cannot be drawn
        assert "bleu4" in results["valid"]
