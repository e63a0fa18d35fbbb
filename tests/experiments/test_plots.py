"""The captioning figures: written as PNGs of the expected size, and shape errors that name the argument."""

import numpy as np
from PIL import Image
import pytest

from experiments import plots


def test_caption_grid_and_attention_figures_are_written(tmp_path):
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3))
    plots.plot_captions(tmp_path / "grid.png", images, ["a dog", "a cat on a mat", "two birds"], columns=2)
    with Image.open(tmp_path / "grid.png") as im:  # 2 columns x 2 rows of 3.2 x 3.4 inches at 100 dpi
        assert im.size == (640, 680)
    weights = np.random.default_rng(1).dirichlet(np.ones(4), size=3).reshape(3, 2, 2)
    plots.plot_caption_attention(tmp_path / "att.png", images[0], ["a", "dog", "</s>"], weights, columns=2)
    with Image.open(tmp_path / "att.png") as im:  # 4 panels (the image and 3 words): 2 x 2 of 2.2 x 2.4 inches
        assert im.size == (440, 480)


def test_figure_arguments_are_checked():
    images = np.zeros((2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"images must have shape \[N, H, W, 3\]"):
        plots.plot_captions("x.png", images, ["only one caption"])
    with pytest.raises(ValueError, match=r"weights must have shape \[len\(words\)=2, h, w\]"):
        plots.plot_caption_attention("x.png", images[0], ["a", "b"], np.zeros((3, 2, 2)))


def test_caption_titles_wrap_at_spaces():
    assert plots._wrap("a man riding a horse on a beach", 12) == "a man riding\na horse on a\nbeach"
