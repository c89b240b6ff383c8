"""Pure image functions behind kerasreg's augmentation layers and TTA.

Everything here works on channels-last batches `(N, H, W, C)` of floating
point images and uses only `keras.ops` / `keras.random`, so it runs on every
Keras backend (and inside a `tf.data` graph on the TensorFlow backend).

- Crops: `crop_and_resize` takes a *different* box per image in one vectorised
  pair of batched matrix products (Keras's `RandomCrop` uses one box for the
  whole batch); `sample_resized_crop_boxes` (Inception, Szegedy et al.
  2015) and `sample_scale_crop_boxes` (ResNet, He et al. 2016) draw the boxes.
- Colour: `pca_color_offset` is AlexNet's "fancy PCA" (Krizhevsky et al.
  2012); `rgb_covariance_eigen` turns streamed moments into its eigen-pairs.
- AutoAugment's operations (Cubuk et al. 2019) on images in `[0, 1]`, each
  with a per-image magnitude: `blend`, `adjust_brightness`, `adjust_color`,
  `adjust_contrast`, `adjust_sharpness`, `solarize`, `posterize`, `invert`,
  `autocontrast`, `equalize`, and `geometric_transforms` (shear, translate,
  rotate as affine matrices for `keras.ops.image.affine_transform`).
- `pixel_noise`: salt-and-pepper, flip and Gaussian corruption of pixels.
- `tta_views`: the AlexNet/ResNet multi-crop evaluation views.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from kerasreg import utils

# ----------------------------------------------------------------------------
# Crops
# ----------------------------------------------------------------------------


def crop_and_resize(
    images, boxes, size: tuple[int, int], interpolation: str = "bilinear"
):
    """Crops a different box out of every image and resizes it to `size`.

    Args:
        images: float tensor `(N, H, W, C)`.
        boxes: float tensor `(N, 4)` of `(top, left, height, width)` in pixels
            of the input (continuous coordinates: the box `(0, 0, H, W)` is
            the whole image).
        size: `(height, width)` of the output.
        interpolation: `"bilinear"` or `"nearest"`.

    Returns:
        Tensor `(N, height, width, C)`.

    The output pixel `j` samples the input at `left + (j + 0.5) * width /
    out_width - 0.5` (half-pixel centres, as `keras.ops.image.resize`), so a
    box covering the whole image at the same size is the identity; samples
    outside the image take the nearest edge pixel.

    Bilinear (and nearest) resampling is separable, so each image is resampled
    by two small matrix products, `R_y @ image @ R_x^T`, where row `i` of `R_y`
    holds the interpolation weights of output row `i` over the input rows. All
    images go through one batched `einsum` per axis: no gather, no projective
    transform, and it compiles with XLA on every backend (TensorFlow has no
    XLA kernel for `affine_transform`). The work grows with input height x
    input width x output height, so it suits images up to a few hundred
    pixels (at 32 px it is 1.5x faster than the projective transform on a
    CPU, at 224 px the same); for much larger inputs, resize them first. On
    accelerators that run float32 matrix products in reduced precision by
    default (TF32 on recent NVIDIA GPUs, bfloat16 passes on TPUs), the
    resampled values carry that rounding.

    The height and width may be unknown until run time (e.g. a
    `tf.function` with input signature `(None, None, None, 3)`).
    """
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = images.shape[1], images.shape[2]
    if in_h is None:
        in_h = ops.shape(images)[1]
    if in_w is None:
        in_w = ops.shape(images)[2]
    dtype = images.dtype
    boxes = ops.cast(boxes, "float32")
    rows = _interpolation_matrix(boxes[:, 0], boxes[:, 2], out_h, in_h, interpolation)
    cols = _interpolation_matrix(boxes[:, 1], boxes[:, 3], out_w, in_w, interpolation)
    x = ops.cast(images, "float32")
    x = ops.einsum("nih,nhwc->niwc", rows, x)
    x = ops.einsum("njw,niwc->nijc", cols, x)
    return ops.cast(x, dtype)


def _interpolation_matrix(start, extent, out_size: int, in_size, interpolation):
    """`(N, out_size, in_size)` resampling weights along one axis.

    Output index `i` samples the input at `c = start + (i + 0.5) * extent /
    out_size - 0.5`, clamped to the valid range (edge pixels repeat); its
    weights are the bilinear hat `max(0, 1 - |c - k|)` over input indices `k`
    (at most two non-zero weights, summing to one), or a one-hot at `round(c)`.
    """
    step = extent / out_size
    i = ops.arange(out_size, dtype="float32")
    coords = ops.expand_dims(start + 0.5 * step - 0.5, 1) + ops.expand_dims(
        step, 1
    ) * ops.expand_dims(i, 0)
    last = ops.cast(in_size, "float32") - 1.0  # in_size may be a tensor
    coords = ops.clip(coords, 0.0, last)
    grid = ops.reshape(ops.arange(in_size, dtype="float32"), (1, 1, -1))
    coords = ops.expand_dims(coords, 2)
    if interpolation == "nearest":
        return ops.cast(ops.equal(ops.floor(coords + 0.5), grid), "float32")
    return ops.relu(1.0 - ops.abs(coords - grid))


def sample_resized_crop_boxes(
    batch_size,
    image_size: tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    seed=None,
    attempts: int = 10,
):
    """Inception-style random boxes: area fraction in `scale`, aspect in `ratio`.

    As torchvision's `RandomResizedCrop`: up to `attempts` candidate boxes are
    drawn per image (area uniform in `scale`, log-aspect uniform in
    `log(ratio)`); the first that fits the image is kept, otherwise the
    largest centred box with the aspect clipped to `ratio`. Vectorised: all
    candidates of all images come from one uniform draw (one draw keeps the
    per-batch graph small, which matters for small images in `tf.data`).

    Returns:
        float32 tensor `(batch_size, 4)` of `(top, left, height, width)`.
    """
    scale = utils.check_range("scale", scale, 0.0, low_exclusive=True)
    ratio = utils.check_range("ratio", ratio, 0.0, low_exclusive=True)
    height, width = float(image_size[0]), float(image_size[1])
    area = height * width
    u = keras.random.uniform((batch_size, 2 * attempts + 2), seed=seed)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u[:, :attempts])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    half_log_ratio = 0.5 * (log_lo + (log_hi - log_lo) * u[:, attempts:-2])
    # w = sqrt(area * aspect), h = sqrt(area / aspect).
    side = ops.sqrt(target_area)
    w = side * ops.exp(half_log_ratio)
    h = side * ops.exp(-half_log_ratio)
    # Every candidate is positive (scale[0] > 0); it fits if inside the image.
    fits = ops.cast(ops.logical_and(w <= width, h <= height), "float32")
    # The first candidate that fits: a one-hot of the argmax of the 0/1 mask.
    pick = ops.one_hot(ops.argmax(fits, axis=1), attempts, dtype="float32")
    any_fits = ops.max(fits, axis=1, initial=0.0) > 0.5  # initial: empty batches
    # Fallback: the whole image, aspect clipped to the range (torchvision).
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fb_w, fb_h = width, width / ratio[0]
    elif in_ratio > ratio[1]:
        fb_w, fb_h = height * ratio[1], height
    else:
        fb_w, fb_h = width, height
    w = ops.where(any_fits, ops.sum(w * pick, axis=1), fb_w)
    h = ops.where(any_fits, ops.sum(h * pick, axis=1), fb_h)
    # Uniform position; the fallback box is centred.
    position = ops.where(ops.expand_dims(any_fits, 1), u[:, -2:], 0.5)
    top = position[:, 0] * (height - h)
    left = position[:, 1] * (width - w)
    return ops.stack([top, left, h, w], axis=1)


def sample_scale_crop_boxes(
    batch_size,
    image_size: tuple[int, int],
    crop_size: tuple[int, int],
    short_side: tuple[float, float],
    seed=None,
):
    """ResNet-style boxes: resize to a random short side, take a random patch.

    The short side `L ~ U[short_side]` (per image) fixes the resize factor
    `s = L / min(H, W)`; a `crop_size` patch of the resized image is a box of
    `crop_size / s` input pixels, placed uniformly at random.

    Returns:
        float32 tensor `(batch_size, 4)` of `(top, left, height, width)`.
    """
    height, width = float(image_size[0]), float(image_size[1])
    u = keras.random.uniform((batch_size, 3), seed=seed)
    short = short_side[0] + (short_side[1] - short_side[0]) * u[:, 0]
    inverse_factor = min(height, width) / short
    box_h = ops.minimum(crop_size[0] * inverse_factor, height)
    box_w = ops.minimum(crop_size[1] * inverse_factor, width)
    top = u[:, 1] * (height - box_h)
    left = u[:, 2] * (width - box_w)
    return ops.stack([top, left, box_h, box_w], axis=1)


def center_box(
    image_size: tuple[int, int],
    crop_size: tuple[int, int],
    short_side: float | None = None,
) -> np.ndarray:
    """The deterministic centre view, as `(top, left, height, width)`.

    With `short_side`, the box of a `crop_size` centre crop of the image
    resized to that short side (ResNet evaluation); without it, the largest
    centred box with the aspect ratio of `crop_size` (then resized).
    """
    height, width = float(image_size[0]), float(image_size[1])
    if short_side is not None:
        factor = short_side / min(height, width)
        box_h = min(crop_size[0] / factor, height)
        box_w = min(crop_size[1] / factor, width)
    else:
        aspect = crop_size[1] / crop_size[0]
        box_h, box_w = height, height * aspect
        if box_w > width:
            box_h, box_w = width / aspect, width
    return np.array(
        [(height - box_h) / 2.0, (width - box_w) / 2.0, box_h, box_w], "float32"
    )


# ----------------------------------------------------------------------------
# PCA colour augmentation
# ----------------------------------------------------------------------------

#: AlexNet's ImageNet RGB eigenvalues (pixels scaled to [0, 1]).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
#: AlexNet's ImageNet RGB eigenvectors, one per column.
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def pca_color_offset(alpha, eigval, eigvec):
    """Fancy-PCA RGB shift per image: `sum_i alpha_i * lambda_i * p_i`.

    Args:
        alpha: `(N, 3)` random coefficients, one row per image.
        eigval: `(3,)` eigenvalues `lambda_i`.
        eigvec: `(3, 3)` eigenvectors `p_i` as columns.

    Returns:
        `(N, 3)` offsets to add to every pixel of each image.
    """
    return ops.matmul(alpha * eigval[None, :], ops.transpose(eigvec))


def rgb_covariance_eigen(
    count: float, total: np.ndarray, outer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-pairs of the RGB covariance from streamed moments (float64).

    Args:
        count: number of pixels seen.
        total: `(3,)` sum of the pixels.
        outer: `(3, 3)` sum of the outer products `x x^T`.

    Returns:
        `(eigval, eigvec)`: eigenvalues in decreasing order and the matching
        eigenvectors as columns (each with a non-negative sum, a fixed sign).
    """
    if count < 2:
        raise ValueError(
            f"Need at least 2 pixels to estimate a covariance. Got {count}."
        )
    mean = total / count
    cov = (outer - count * np.outer(mean, mean)) / (count - 1)
    cov = (cov + cov.T) / 2.0
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval = np.clip(eigval[order], 0.0, None)
    eigvec = eigvec[:, order]
    signs = np.where(eigvec.sum(axis=0) < 0, -1.0, 1.0)
    return eigval, eigvec * signs


# ----------------------------------------------------------------------------
# Colour operations on [0, 1] images, with a per-image factor (AutoAugment)
# ----------------------------------------------------------------------------


def _per_image(value, images):
    value = ops.cast(value, images.dtype)
    return ops.reshape(value, (-1, 1, 1, 1))


def grayscale(images):
    """ITU-R 601-2 luma (PIL's `convert("L")`), kept with one channel."""
    if images.shape[-1] == 1:
        return images
    weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)


def blend(degenerate, images, factor):
    """PIL's `ImageEnhance`: `degenerate + factor * (images - degenerate)`."""
    out = degenerate + _per_image(factor, images) * (images - degenerate)
    return ops.clip(out, 0.0, 1.0)


def adjust_brightness(images, factor):
    """Blends with black: factor 0 is black, 1 the image."""
    return blend(ops.zeros_like(images), images, factor)


def adjust_color(images, factor):
    """Blends with the grayscale image: factor 0 is gray, 1 the image."""
    return blend(ops.broadcast_to(grayscale(images), ops.shape(images)), images, factor)


def adjust_contrast(images, factor):
    """Blends with the image's mean gray level (per image)."""
    mean = ops.mean(grayscale(images), axis=(1, 2, 3), keepdims=True)
    return blend(ops.broadcast_to(mean, ops.shape(images)), images, factor)


def sharpness_degenerate(images):
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
    return blend(sharpness_degenerate(images), images, factor)


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


def geometric_transforms(kind, magnitude, image_size: tuple[int, int]):
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


# ----------------------------------------------------------------------------
# Pixel noise
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# Test-time augmentation views
# ----------------------------------------------------------------------------


def _resize_short_side(images, short_side: int):
    h, w = images.shape[1], images.shape[2]
    if min(h, w) == short_side:
        return images
    factor = short_side / min(h, w)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    return ops.cast(
        ops.image.resize(images, size, interpolation="bilinear", antialias=True),
        images.dtype,
    )


def tta_views(
    images,
    crop_size: tuple[int, int],
    crops: str = "ten",
    flips: bool = True,
    scales: Sequence[int] | None = None,
    padding: int = 0,
):
    """Every evaluation view of a batch, stacked view-major.

    For each scale (the image resized so its short side is that many pixels;
    `None`: as is), after reflect-padding by `padding` pixels, the views are
    the centre crop (`"center"`) or the four corners and the centre
    (`"five"`), each followed by its horizontal mirror when `flips` (always
    for `"ten"`).

    Returns:
        Tensor `(V, N, crop_h, crop_w, C)`, `V = scales * crops * (1 + flips)`.
    """
    ch, cw = int(crop_size[0]), int(crop_size[1])
    mirror = flips or crops == "ten"
    views = []
    for scale in scales or (None,):
        x = images if scale is None else _resize_short_side(images, int(scale))
        if padding:
            p = int(padding)
            x = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        h, w = x.shape[1], x.shape[2]
        if h < ch or w < cw:
            raise ValueError(
                f"The views are {ch}x{cw} crops but the (resized, padded) image "
                f"is only {h}x{w}. Use larger `scales` or `padding`."
            )
        top, left = (h - ch) // 2, (w - cw) // 2
        corners = [(top, left)]
        if crops in ("five", "ten"):
            corners += [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)]
        for y0, x0 in corners:
            view = x[:, y0 : y0 + ch, x0 : x0 + cw, :]
            views.append(view)
            if mirror:
                views.append(ops.flip(view, axis=2))
    return ops.stack(views, axis=0)
