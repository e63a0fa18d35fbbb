"""ConvEncoder against NumPy blocks written from their equations (conv 3x3, GroupNorm, ReLU, max-pool), its shape
rules, and the joint-CNN path: an encoder trained together with a Show, Attend and Tell decoder.

Tiny sizes (8x8 images, two blocks: a 2x2 grid of 8 features); params come from NumPy, and one jitted function
(`probe`) serves the shape, reference and dropout checks.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from rnn_jax.models.captioner import Captioner
from rnn_jax.models.image_encoder import IMAGENET_MEAN, IMAGENET_STD, ConvEncoder
from tests.conftest import assert_close

B, N, CHANNELS = 2, 8, (4, 8)
ENCODER = ConvEncoder(image_size=N, channels=CHANNELS, norm_groups=2, dropout=0.25)
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0.0, 1.0, (B, N, N, 3)).astype(np.float32)
KEYS = [jax.random.key(i, impl="rbg") for i in (1, 2)]  # rbg keys compile far faster than threefry


def random_params(init, scale=0.5):
    """Returns params of `init`'s structure and shapes, uniform in +-scale from NumPy (nothing compiles)."""
    shapes = jax.eval_shape(init, jax.random.key(0))
    return jax.tree.map(lambda s: jnp.asarray(RNG.uniform(-scale, scale, s.shape), np.float32), shapes)


PARAMS = random_params(ENCODER.init)


@functools.cache
def probe():
    """Returns a jitted ``(params, images, key) -> (grid, grid in training with dropout by key)``."""

    @jax.jit
    def run(params, images, key):
        return ENCODER.apply(params, images), ENCODER.apply(params, images, dropout_key=key, deterministic=False)

    return run


def test_grid_shape_and_feature_size_follow_the_blocks():
    assert ENCODER.grid_shape == (2, 2) and ENCODER.feature_size == 8 and ENCODER.num_slots == 4
    assert ConvEncoder().grid_shape == (8, 8) and ConvEncoder().feature_size == 256  # 128 / 2**4, the defaults
    grid, _ = probe()(PARAMS, IMAGES, KEYS[0])
    assert grid.shape == (B, 4, 8)


def _np_block(x, conv, norm, groups: int):
    """Returns one block by its equations (float64): conv 3x3 'same' + bias, GroupNorm, ReLU, max-pool 2x2."""
    n, kernel = x.shape[1], conv["kernel"]  # kernel [3, 3, C_in, C_out]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = sum(padded[:, i:i + n, j:j + n] @ kernel[i, j] for i in range(3) for j in range(3)) + conv["bias"]
    b, c = y.shape[0], y.shape[-1]
    g = y.reshape(b, n, n, groups, c // groups)  # statistics per image and group, over positions and channels
    g = (g - g.mean((1, 2, 4), keepdims=True)) / np.sqrt(g.var((1, 2, 4), keepdims=True) + 1e-5)
    y = np.maximum(g.reshape(y.shape) * norm["scale"] + norm["bias"], 0.0)
    return y.reshape(b, n // 2, 2, n // 2, 2, c).max((2, 4))  # [B, n / 2, n / 2, C]


def test_grid_equals_numpy_blocks_after_imagenet_normalisation():
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), PARAMS)
    x = (IMAGES - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)  # [B, N, N, 3] float64
    for i in range(len(CHANNELS)):
        x = _np_block(x, p[f"Conv_{i}"], p[f"GroupNorm_{i}"], ENCODER.norm_groups)
    want = x.reshape(B, -1, CHANNELS[-1])  # positions row by row
    assert_close(probe()(PARAMS, IMAGES, KEYS[0])[0], want)


def test_dropout_acts_on_the_grid_in_training_only_and_by_key():
    grid, a = probe()(PARAMS, IMAGES, KEYS[0])
    _, b = probe()(PARAMS, IMAGES, KEYS[0])
    _, c = probe()(PARAMS, IMAGES, KEYS[1])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    kept = np.asarray(a) != 0
    assert 0 < kept.mean() < 1
    assert_close(np.asarray(a)[kept], np.asarray(grid)[kept] / 0.75)  # inverted dropout at rate 0.25
    with pytest.raises(ValueError, match="dropout_key"):
        ENCODER.apply(PARAMS, IMAGES, deterministic=False)


@pytest.mark.parametrize("images", [IMAGES[..., :1], IMAGES[:, :4], IMAGES[0], (IMAGES * 255).astype(np.uint8)])
def test_images_of_another_shape_or_dtype_are_errors_naming_the_shape(images):
    with pytest.raises(ValueError, match=r"images must be floats in \[0, 1\] of shape \[batch, 8, 8, 3\]"):
        ENCODER.apply(PARAMS, images)


@pytest.mark.parametrize("fields, match", [
    (dict(image_size=10), r"multiple of 2\*\*len\(channels\) = 4"),
    (dict(norm_groups=3), "norm_groups must divide"),
    (dict(channels=()), "channels must hold"),
    (dict(dropout=1.5), "dropout must lie in"),
])
def test_bad_fields_are_errors_naming_them(fields, match):
    with pytest.raises(ValueError, match=match):
        ConvEncoder(**{**dict(image_size=N, channels=CHANNELS, norm_groups=2), **fields})


def test_jointly_training_the_encoder_with_show_attend_tell_lowers_the_loss():
    encoder = ConvEncoder(image_size=4, channels=(8,), norm_groups=2, dropout=0.1)  # one block: a 2x2 grid of 8
    captioner = Captioner(7, 4, 6, encoder.feature_size, decoder="show_attend_tell", attn_size=3)
    params = {"encoder": random_params(encoder.init), "captioner": random_params(captioner.init)}
    flat, unravel = ravel_pytree(params)  # Adam on one vector compiles far faster
    tgt_in = np.array([[1, 3, 4], [1, 5, 6]], np.int32)
    batch = {"tgt_in": tgt_in, "tgt_out": np.array([[3, 4, 2], [5, 6, 2]], np.int32),
             "tgt_mask": np.ones(tgt_in.shape, np.float32)}
    optimiser = optax.adam(0.03)

    def loss(flat, images, key):
        p = unravel(flat)
        grid = encoder.apply(p["encoder"], images, dropout_key=key, deterministic=False)  # [B, 4, 8]
        total, count, _ = captioner.loss(p["captioner"], {**batch, "features": grid}, attention_reg=1.0)
        return total / count

    @jax.jit
    def step(flat, opt_state, images, key):
        value, grads = jax.value_and_grad(loss)(flat, images, key)
        updates, opt_state = optimiser.update(grads, opt_state)
        return optax.apply_updates(flat, updates), opt_state, value, grads

    opt_state, history = optimiser.init(flat), []
    for i in range(12):
        flat, opt_state, value, grads = step(flat, opt_state, IMAGES[:, :4, :4], jax.random.fold_in(KEYS[0], i))
        if i == 0:  # the caption loss reaches the convolution
            conv = unravel(grads)["encoder"]["Conv_0"]["kernel"]
            assert np.all(np.isfinite(grads)) and np.any(np.asarray(conv) != 0)
        history.append(float(value))
    assert history[-1] < 0.6 * history[0], history
