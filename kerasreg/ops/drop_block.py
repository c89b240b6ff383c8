"""DropBlock (Ghiasi et al., 2018): drop contiguous square regions of feature maps.

Semantics (the paper's Algorithm 1, which we follow exactly; see why below):

- Masks are per feature map: every (example, channel) pair gets its own mask.
- Block seeds are drawn with probability `gamma` only inside the *valid
  region*, the positions where a whole `block_size x block_size` block fits in
  the feature map (rows `[bh // 2, H - (bh - 1) // 2)`, likewise for columns);
  every seed is then grown into a full block, so every dropped block has the
  requested size and no block is cut by the border.
- `gamma = rate / (bh * bw) * (H * W) / ((H - bh + 1) * (W - bw + 1))`, with the
  block clipped to the feature map (`bh = min(block_size, H)`, same for `bw`):
  `rate / block_area` seeds per position, corrected for the valid region
  covering only `(H - bh + 1)(W - bw + 1)` of the `H * W` positions.
- Kept units are rescaled by `count(M) / count_ones(M)`, the number of units
  over the number of kept units of the whole mask (the paper's "normalize the
  features"), not by `1 / (1 - rate)`.

Why these choices. The `gamma` formula ignores block overlap, so the realised
drop fraction is somewhat below `rate` and random from step to step; rescaling
by the realised count of kept units keeps the activation mean exact at every
step, where `1 / (1 - rate)` would inflate activations. timm's `DropBlock2d`
defaults to its "fast" variant, which draws seeds everywhere (blocks are
clipped at the borders, so border blocks are smaller than requested) and
rescales by the count of kept units. keras-cv's `DropBlock2D`, like the
TensorFlow TPU ResNet reference it derives from, restricts seeds to the valid
region and rescales by the count of kept units too, but uses the unclipped
block size in the `(H - bs + 1)(W - bs + 1)` factor of `gamma`, and computes
the row bound of the valid region from the feature map's *width* (correct
only for square maps). We keep the paper's definition, with the block clipped
consistently in `gamma` and in the valid region.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _drop_block_gamma(rate: float, height: int, width: int, block_size) -> float:
    """The per-position seed probability `gamma` of DropBlock (clipped to 1)."""
    bh, bw = _clip_block(block_size, height, width)
    gamma = rate * height * width / (bh * bw) / ((height - bh + 1) * (width - bw + 1))
    return float(min(gamma, 1.0))


def _clip_block(block_size, height: int, width: int) -> tuple[int, int]:
    if isinstance(block_size, int):
        block_size = (block_size, block_size)
    return min(int(block_size[0]), height), min(int(block_size[1]), width)


def _drop_block_valid_region(height: int, width: int, block_size) -> np.ndarray:
    """A `(height, width)` 0/1 array of the positions where a block may be seeded."""
    bh, bw = _clip_block(block_size, height, width)
    valid = np.zeros((height, width), dtype="float32")
    valid[bh // 2 : height - (bh - 1) // 2, bw // 2 : width - (bw - 1) // 2] = 1.0
    return valid


def drop_block_mask(
    shape, rate: float, block_size, seed=None, data_format: str = "channels_last"
):
    """The 0/1 keep-mask of DropBlock for a 4D input `shape` (float32).

    Args:
        shape: the 4D input shape (batch may be dynamic; rows, cols static).
        rate: the target fraction of dropped units, in `[0, 1)`.
        block_size: int or `(rows, cols)`, the block size.
        seed: a `keras.random.SeedGenerator` or an integer.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        A float32 tensor of `shape` with 0 on dropped blocks and 1 elsewhere.
    """
    if data_format == "channels_first":
        batch, channels, height, width = shape
    else:
        batch, height, width, channels = shape
    bh, bw = _clip_block(block_size, height, width)
    gamma = _drop_block_gamma(rate, height, width, (bh, bw))
    # Seeds are drawn on the valid region only, `(H - bh + 1, W - bw + 1)`,
    # and zero-padded to the map (the padding *is* `_drop_block_valid_region`).
    # The mask is sampled channels_last (max pooling on CPU wants NHWC) and
    # transposed afterwards: its entries are i.i.d., so the layout is free.
    noise = keras.random.uniform(
        (batch, height - bh + 1, width - bw + 1, channels), seed=seed, dtype="float32"
    )
    seeds = ops.cast(noise < gamma, "float32")
    seeds = ops.pad(
        seeds, [[0, 0], [bh // 2, (bh - 1) // 2], [bw // 2, (bw - 1) // 2], [0, 0]]
    )
    # A seed at (r, c) drops the block it is the ("same"-padding) centre of;
    # the bh x bw max pooling is done as two separable 1D poolings.
    dropped = ops.max_pool(seeds, pool_size=(bh, 1), strides=1, padding="same")
    dropped = ops.max_pool(dropped, pool_size=(1, bw), strides=1, padding="same")
    keep = 1.0 - dropped
    if data_format == "channels_first":
        keep = ops.transpose(keep, (0, 3, 1, 2))
    return keep


def drop_block_2d(
    inputs,
    rate: float,
    block_size=7,
    seed=None,
    data_format: str = "channels_last",
):
    """Applies DropBlock to a 4D tensor (training-time behaviour).

    Args:
        inputs: 4D tensor; rows and cols must be static.
        rate: the target fraction of dropped units, in `[0, 1)`.
        block_size: int or `(rows, cols)`, the side of the dropped squares.
            Clipped to the feature map size.
        seed: a `keras.random.SeedGenerator` or an integer.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        `inputs * M * count(M) / count_ones(M)` with `M` the DropBlock mask.
    """
    if rate == 0:
        return inputs
    keep = drop_block_mask(ops.shape(inputs), rate, block_size, seed, data_format)
    # Normalise by the realised fraction of kept units; the floor only avoids
    # 0 / 0 when everything is dropped (the output is then all zeros anyway).
    scale = 1.0 / ops.maximum(ops.mean(keep), 1e-7)
    return inputs * ops.cast(keep * scale, inputs.dtype)
