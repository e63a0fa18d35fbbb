"""A small convolutional image encoder for captioning, trained jointly with the decoder: images -> a grid.

`ConvEncoder` turns ``images [B, N, N, 3]`` (N = ``image_size``, values in [0, 1]) into the annotation
grid of Xu et al. (2015), ``[B, h * w, C]`` (row-major over the h x w positions, h = w = N / 2**L for L
blocks, C the last block's channels), the features `rnn_jax.models.captioner.Captioner` attends over (or
mean-pools, for Show and Tell).

* input normalisation: each channel ``(x - mean) / std`` with ImageNet's statistics (mean 0.485, 0.456,
  0.406; std 0.229, 0.224, 0.225), the usual preprocessing of image networks;
* each block: conv 3x3 (stride 1, 'SAME' padding, bias) -> GroupNorm -> ReLU -> max-pool 2x2 (stride 2).

Why GroupNorm (Wu & He 2018) and not batch norm: batch norm's running statistics are mutable state outside
the plain params pytree, and in training its batch statistics couple the images of a batch (a padding row
of a fixed-shape batch would change the real rows' features). GroupNorm normalises each image on its own,
so training and evaluation compute the same function and padding rows are inert. ``norm_groups=0`` drops
the normalisation. Dropout (``dropout`` rate, in training) acts on the output grid.

The network is a Flax linen module inside; params are its plain ``params`` dict (``{'Conv_0': {'kernel'
[3, 3, 3, C_1], 'bias' [C_1]}, 'GroupNorm_0': {'scale' [C_1], 'bias' [C_1]}, ...}``).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax.checks import check_rate, check_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvNet(nn.Module):
    """The blocks of `ConvEncoder` as a linen module: ``[B, N, N, 3] -> [B, h, w, C]`` (already normalised)."""

    channels: tuple
    norm_groups: int

    @nn.compact
    def __call__(self, x):
        for c in self.channels:
            x = nn.Conv(c, (3, 3), padding="SAME")(x)  # [B, n, n, c]
            if self.norm_groups:
                x = nn.GroupNorm(num_groups=self.norm_groups, epsilon=1e-5)(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))  # [B, n / 2, n / 2, c]
        return x


@dataclasses.dataclass(frozen=True)
class ConvEncoder:
    """A convolutional encoder (see the module docstring); hashable, a jit static argument.

    Attributes:
      image_size: N, the images' height and width (a multiple of ``2 ** len(channels)``).
      channels: each block's output channels (C is the last).
      norm_groups: GroupNorm's groups (dividing every block's channels); 0: no normalisation.
      dropout: the rate on the output grid in training.
    """

    image_size: int = 128
    channels: tuple = (32, 64, 128, 256)
    norm_groups: int = 8
    dropout: float = 0.0

    def __post_init__(self):
        check_size("image_size", self.image_size)
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ValueError("channels must hold at least one block's channel count, got ()")
        for c in self.channels:
            check_size("channels", c)
        check_size("norm_groups", self.norm_groups, 0)
        check_rate("dropout", self.dropout)
        scale = 2 ** len(self.channels)
        if self.image_size % scale:
            raise ValueError(f"image_size must be a multiple of 2**len(channels) = {scale} (one 2x2 pooling per "
                             f"block), got {self.image_size}")
        if self.norm_groups and any(c % self.norm_groups for c in self.channels):
            raise ValueError(f"norm_groups must divide every block's channels {self.channels}, got "
                             f"{self.norm_groups}")

    @property
    def network(self) -> ConvNet:
        """The linen module of the blocks."""
        return ConvNet(self.channels, self.norm_groups)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(h, w)``: the output grid's positions, ``image_size / 2**len(channels)`` each."""
        side = self.image_size // 2 ** len(self.channels)
        return side, side

    @property
    def feature_size(self) -> int:
        """C: the features per grid position (the last block's channels)."""
        return self.channels[-1]

    @property
    def num_slots(self) -> int:
        """S = h * w: the grid's positions."""
        h, w = self.grid_shape
        return h * w

    def init(self, key) -> dict:
        """Returns the linen module's params dict (see the module docstring for its layout)."""
        shape = (1, self.image_size, self.image_size, 3)
        return self.network.init(key, jnp.zeros(shape, jnp.float32))["params"]

    def _check_images(self, images):
        images = jnp.asarray(images)
        n = self.image_size
        if images.ndim != 4 or images.shape[1:] != (n, n, 3) or not jnp.issubdtype(images.dtype, jnp.floating):
            raise ValueError(f"images must be floats in [0, 1] of shape [batch, {n}, {n}, 3] (image_size {n}, "
                             f"RGB last), got {images.dtype} {images.shape}")
        return images

    def apply(self, params, images, *, dropout_key=None, deterministic: bool = True):
        """Returns the grid ``[B, h * w, C]`` of ``images [B, N, N, 3]`` (floats in [0, 1]).

        Rows of the grid run over the h x w positions row by row. Dropout on the grid needs `dropout_key`
        when ``not deterministic`` and ``dropout > 0``.
        """
        images = self._check_images(images)
        train = dropout_lib.is_active(self.dropout, deterministic)
        if train and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and dropout > 0")
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)[None, None, None]  # [1, 1, 1, 3]
        std = jnp.asarray(IMAGENET_STD, jnp.float32)[None, None, None]
        x = (images.astype(jnp.float32) - mean) / std
        grid = self.network.apply({"params": params}, x)  # [B, h, w, C]
        grid = grid.reshape(grid.shape[0], -1, grid.shape[-1])  # [B, h * w, C]
        return dropout_lib.dropout(dropout_key, self.dropout, grid) if train else grid
