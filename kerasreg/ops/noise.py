"""Pixel corruption: salt-and-pepper, flip or Gaussian noise on random pixels."""

from __future__ import annotations

import keras
from keras import ops


def pixel_noise(
    images,
    rate: float,
    mode: str = "salt_and_pepper",
    value_range: tuple[float, float] = (0.0, 255.0),
    stddev: float = 0.1,
    seed=None,
):
    """Corrupts a random fraction `rate` of the pixels of every image.

    A pixel (all its channels) is hit with probability `rate`, independently
    per image and pixel. `"salt_and_pepper"` sets it to the minimum or maximum
    of `value_range` (coin flip); `"flip"` mirrors its values in the range
    (`lo + hi - x`, a bit flip for binary images); `"gaussian"` adds
    `N(0, stddev * (hi - lo))` noise per channel, clipped to the range.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    shape = ops.shape(images)
    mask_shape = (shape[0], shape[1], shape[2], 1)
    hit = keras.random.uniform(mask_shape, seed=seed) < rate
    if mode == "salt_and_pepper":
        salt = keras.random.uniform(mask_shape, seed=seed) < 0.5
        noisy = ops.where(salt, hi, lo)
        noisy = ops.cast(noisy, images.dtype)
    elif mode == "flip":
        noisy = (lo + hi) - images
    elif mode == "gaussian":
        noise = keras.random.normal(shape, stddev=stddev * (hi - lo), seed=seed)
        noisy = ops.clip(images + ops.cast(noise, images.dtype), lo, hi)
    else:
        raise ValueError(
            "Invalid value received for argument `mode`. Expected one of "
            f"'salt_and_pepper', 'flip', 'gaussian'. Received: mode={mode!r}"
        )
    return ops.where(hit, noisy, images)
