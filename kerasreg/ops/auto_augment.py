"""AutoAugment's image operations (Cubuk et al. 2019), on images in `[0, 1]`.

Each takes a channels-last float batch `(N, H, W, C)` and, where it has one,
a per-image magnitude: `adjust_brightness`, `adjust_color`,
`adjust_contrast`, `adjust_sharpness` (PIL's `ImageEnhance`), `solarize`,
`posterize`, `invert`, `autocontrast`, `equalize` (PIL's `ImageOps`) and
`grayscale`. `_geometric_transforms` builds the shear, translate and rotate
steps as affine matrices for `keras.ops.image.affine_transform`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def _per_image(value, images):
    value = ops.cast(value, images.dtype)
    return ops.reshape(value, (-1, 1, 1, 1))


def grayscale(images):
    """ITU-R 601-2 luma (PIL's `convert("L")`), kept with one channel."""
    if images.shape[-1] == 1:
        return images
    weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)


def _blend(degenerate, images, factor):
    """PIL's `ImageEnhance`: `degenerate + factor * (images - degenerate)`."""
    out = degenerate + _per_image(factor, images) * (images - degenerate)
    return ops.clip(out, 0.0, 1.0)


def adjust_brightness(images, factor):
    """Blends with black: factor 0 is black, 1 the image."""
    return _blend(ops.zeros_like(images), images, factor)


def adjust_color(images, factor):
    """Blends with the grayscale image: factor 0 is gray, 1 the image."""
    return _blend(
        ops.broadcast_to(grayscale(images), ops.shape(images)), images, factor
    )


def adjust_contrast(images, factor):
    """Blends with the image's mean gray level (per image)."""
    mean = ops.mean(grayscale(images), axis=(1, 2, 3), keepdims=True)
    return _blend(ops.broadcast_to(mean, ops.shape(images)), images, factor)


def _sharpness_degenerate(images):
    """PIL's SMOOTH filter (3x3, centre 5, /13) inside, the image on the border.

    An image with fewer than 3 rows or columns is all border: it is returned
    as is (so `adjust_sharpness` leaves it unchanged).
    """
    h, w = images.shape[1], images.shape[2]
    if h is None or w is None:
        raise ValueError(
            "`adjust_sharpness` needs a static image height and width. "
            f"Received: images.shape={images.shape}"
        )
    if h < 3 or w < 3:
        return images
    channels = images.shape[-1]
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], "float32") / 13.0
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1))
    # "same" padding: the border is replaced below; it also keeps the shape
    # of an empty batch (a "valid" depthwise convolution of an empty batch
    # comes out at the input size on TensorFlow).
    smooth = ops.depthwise_conv(
        images, ops.cast(kernel, images.dtype), strides=1, padding="same"
    )
    # Interior pixels are smoothed, the one-pixel border is the image.
    border = np.ones((1, h, w, 1), "float32")
    border[:, 1:-1, 1:-1, :] = 0.0
    border = ops.cast(border, images.dtype)
    return border * images + (1.0 - border) * smooth


def adjust_sharpness(images, factor):
    """Blends with PIL's SMOOTH filter (3x3, centre 5, /13); borders kept.

    Images with fewer than 3 rows or columns (all border) are unchanged.
    """
    return _blend(_sharpness_degenerate(images), images, factor)


def invert(images):
    """`1 - x`."""
    return 1.0 - images


def solarize(images, threshold):
    """Inverts the pixels at or above a per-image `threshold` (in [0, 1])."""
    return ops.where(images >= _per_image(threshold, images), 1.0 - images, images)


def posterize(images, bits):
    """Keeps the `bits` most significant bits of each 8-bit value (per image)."""
    step = ops.power(2.0, 8.0 - ops.cast(bits, "float32"))
    step = _per_image(step, images)
    levels = ops.floor(ops.round(images * 255.0) / step) * step
    return levels / 255.0


def autocontrast(images):
    """Stretches each channel of each image to the full `[0, 1]` range."""
    # `initial` changes nothing but lets an empty batch through (eager
    # TensorFlow refuses the min / max of an empty tensor without it).
    lo = ops.min(images, axis=(1, 2), keepdims=True, initial=float("inf"))
    hi = ops.max(images, axis=(1, 2), keepdims=True, initial=-float("inf"))
    span = hi - lo
    safe = ops.where(span > 0, span, ops.ones_like(span))
    out = (images - lo) / safe
    return ops.where(span > 0, out, images)


def _histogram(ids, length):
    """Counts of `ids` (ints in `[0, length)`) as a float `(length,)` tensor.

    `bincount` where it compiles to a histogram kernel (TensorFlow, torch:
    on TensorFlow 5x faster than `segment_sum`'s scatter-add for image-sized
    inputs); `segment_sum` on JAX, whose `bincount` has a data-dependent
    length and cannot be traced. A sentinel id `length` keeps `bincount`'s
    input non-empty (TensorFlow's fails on an empty one: an empty group of
    images); its bin is dropped.
    """
    if keras.backend.backend() == "jax":
        return ops.segment_sum(
            ops.ones_like(ids, dtype="float32"), ids, num_segments=length
        )
    sentinel = ops.reshape(ops.cast(length, ids.dtype), (1,))
    counts = ops.bincount(ops.concatenate([ids, sentinel]), minlength=length + 1)
    return ops.cast(counts[:length], "float32")


def equalize(images):
    """Per-image, per-channel histogram equalisation (PIL's `ImageOps.equalize`).

    Every pixel value gets the id of its (image, channel, value) bin; the
    256-bin histograms of all images and channels come from one
    histogram of those ids, the look-up tables from a cumulative sum, and the output
    from one gather of the tables at the same ids: no loop over images or
    channels, no transpose.
    """
    n = ops.shape(images)[0]
    c = images.shape[3]
    # Round half up (the values are integers / 255 up to float error).
    values = ops.cast(ops.clip(images * 255.0 + 0.5, 0.0, 255.0), "int32")
    rows = ops.reshape(ops.arange(n * c, dtype="int32") * 256, (-1, 1, 1, c))
    ids = ops.reshape(values + rows, (-1,))
    hist = ops.reshape(_histogram(ids, n * c * 256), (n * c, 256))
    cum_excl = ops.cumsum(hist, axis=1) - hist
    # PIL: step = (pixels - count of the last non-empty bin) // 255, and the
    # pixels below the last non-empty bin are its exclusive cumulative count.
    below_last = ops.max(
        ops.where(hist > 0, cum_excl, 0.0), axis=1, keepdims=True, initial=0.0
    )
    step = ops.floor(below_last / 255.0)
    safe_step = ops.maximum(step, 1.0)
    lut = ops.minimum(ops.floor((cum_excl + ops.floor(step / 2.0)) / safe_step), 255.0)
    lut = ops.where(step > 0, lut, ops.arange(256, dtype="float32")) / 255.0
    out = ops.take(ops.reshape(lut, (-1,)), ids)
    return ops.cast(ops.reshape(out, ops.shape(images)), images.dtype)


def _geometric_transforms(kind, magnitude, image_size: tuple[int, int]):
    """Per-image affine matrices for AutoAugment's geometric operations.

    Args:
        kind: int tensor `(N,)`: 0 identity, 1 shear-x, 2 shear-y,
            3 translate-x, 4 translate-y, 5 rotate.
        magnitude: float tensor `(N,)`: the shear factor, the translation as a
            fraction of the image size, or the angle in degrees (signed).
        image_size: `(H, W)`.

    Returns:
        `(N, 8)` float32 transforms mapping output to input pixels, about the
        image centre, for `keras.ops.image.affine_transform`.
    """
    h, w = float(image_size[0]), float(image_size[1])
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    kind = ops.cast(kind, "int32")
    m = ops.cast(magnitude, "float32")
    zero = ops.zeros_like(m)
    one = ops.ones_like(m)

    def sel(k, value, default):
        return ops.where(kind == k, value, default)

    theta = m * (math.pi / 180.0)
    cos, sin = ops.cos(theta), ops.sin(theta)
    # Linear part [[a, b], [d, e]] (output -> input, around the centre).
    a = sel(5, cos, one)
    b = sel(1, m, sel(5, -sin, zero))
    d = sel(2, m, sel(5, sin, zero))
    e = sel(5, cos, one)
    tx = sel(3, m * w, zero)
    ty = sel(4, m * h, zero)
    # x_in = a (x - cx) + b (y - cy) + cx + tx, likewise y_in.
    c0 = cx - a * cx - b * cy + tx
    c1 = cy - d * cx - e * cy + ty
    return ops.stack([a, b, c0, d, e, c1, zero, zero], axis=1)
