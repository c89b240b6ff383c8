"""Tests for kerasreg.ops.image: crops, PCA maths, AutoAugment operations, views."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasreg.ops import image as image_ops
from tests import toolkit


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


# ----------------------------------------------------------------------------
# Crops
# ----------------------------------------------------------------------------


def test_crop_and_resize_whole_image_is_identity():
    x = toolkit.images(3, 12, 10, 3)
    boxes = np.tile(np.array([[0.0, 0.0, 12.0, 10.0]], "float32"), (3, 1))
    out = np_(image_ops.crop_and_resize(x, boxes, (12, 10)))
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_crop_and_resize_integer_box_is_a_slice():
    x = toolkit.images(2, 16, 16, 3)
    boxes = np.array([[2.0, 3.0, 8.0, 8.0], [5.0, 1.0, 8.0, 8.0]], "float32")
    out = np_(image_ops.crop_and_resize(x, boxes, (8, 8)))
    np.testing.assert_allclose(out[0], x[0, 2:10, 3:11], atol=1e-3)
    np.testing.assert_allclose(out[1], x[1, 5:13, 1:9], atol=1e-3)


def test_crop_and_resize_matches_keras_resize_when_upscaling():
    x = toolkit.images(1, 8, 8, 1)
    boxes = np.array([[0.0, 0.0, 8.0, 8.0]], "float32")
    out = np_(image_ops.crop_and_resize(x, boxes, (16, 16)))
    ref = np_(ops.image.resize(x, (16, 16), interpolation="bilinear"))
    # Same half-pixel-centre convention; only the border handling differs.
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1], atol=1e-3)


def _reference_crop(x, box, size, interpolation):
    """NumPy crop-and-resize: half-pixel centres, edge pixels repeated."""
    top, left, bh, bw = box
    out_h, out_w = size
    ys = np.clip(top + (np.arange(out_h) + 0.5) * bh / out_h - 0.5, 0, x.shape[0] - 1)
    xs = np.clip(left + (np.arange(out_w) + 0.5) * bw / out_w - 0.5, 0, x.shape[1] - 1)
    if interpolation == "nearest":
        return x[np.floor(ys + 0.5).astype(int)][:, np.floor(xs + 0.5).astype(int)]
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, x.shape[0] - 1), np.minimum(x0 + 1, x.shape[1] - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top_row = x[y0][:, x0] * (1 - wx) + x[y0][:, x1] * wx
    bottom_row = x[y1][:, x0] * (1 - wx) + x[y1][:, x1] * wx
    return top_row * (1 - wy) + bottom_row * wy


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_crop_and_resize_matches_numpy_reference(interpolation):
    # Boxes inside, past every edge, larger and smaller than the output.
    x = toolkit.images(4, 10, 14, 3)
    boxes = np.array(
        [
            [1.5, 2.25, 6.0, 7.5],
            [-3.0, -2.0, 8.0, 9.0],
            [6.0, 9.0, 9.0, 12.0],
            [0.0, 0.0, 20.0, 28.0],
        ],
        "float32",
    )
    out = np_(image_ops.crop_and_resize(x, boxes, (12, 16), interpolation))
    assert out.shape == (4, 12, 16, 3)
    for i in range(4):
        ref = _reference_crop(x[i].astype("float64"), boxes[i], (12, 16), interpolation)
        np.testing.assert_allclose(out[i], ref, atol=1e-3)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.function input signature"
)
def test_crop_and_resize_with_unknown_height_and_width():
    import tensorflow as tf

    x = toolkit.images(2, 9, 13, 3)
    boxes = np.array([[1.0, 2.0, 6.0, 8.0], [0.0, 0.0, 9.0, 13.0]], "float32")

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, None, None, 3), "float32"),
            tf.TensorSpec((None, 4), "float32"),
        ]
    )
    def crop(images, b):
        return image_ops.crop_and_resize(images, b, (5, 7))

    dynamic = crop(tf.constant(x), tf.constant(boxes)).numpy()
    static = np_(image_ops.crop_and_resize(x, boxes, (5, 7)))
    np.testing.assert_allclose(dynamic, static, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"scale": (0.0, 1.0)}, "scale"), ({"ratio": (2.0, 1.0)}, "ratio")],
)
def test_resized_crop_boxes_reject_bad_ranges(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        image_ops.sample_resized_crop_boxes(4, (8, 8), **kwargs)


def test_resized_crop_boxes_respect_scale_ratio_and_image():
    boxes = np_(
        image_ops.sample_resized_crop_boxes(
            2000, (40, 60), (0.2, 0.6), (0.5, 2.0), seed=keras.random.SeedGenerator(1)
        )
    )
    top, left, h, w = boxes.T
    assert np.all(top >= -1e-4) and np.all(left >= -1e-4)
    assert np.all(top + h <= 40 + 1e-3) and np.all(left + w <= 60 + 1e-3)
    area = h * w / (40 * 60)
    assert area.min() >= 0.2 - 1e-4 and area.max() <= 0.6 + 1e-4
    ratio = w / h
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 2.0 + 1e-4
    # Spread over the allowed range, not stuck at one value.
    assert area.std() > 0.05 and np.log(ratio).std() > 0.2


def test_resized_crop_boxes_fall_back_to_centre_when_nothing_fits():
    # An aspect ratio of 4 can never fit a 40x10 box of area 90%.
    boxes = np_(
        image_ops.sample_resized_crop_boxes(
            5, (40, 10), (0.9, 1.0), (4.0, 4.0), seed=keras.random.SeedGenerator(0)
        )
    )
    # Fallback: whole width, height = width / 4, centred vertically.
    np.testing.assert_allclose(boxes, np.tile([[18.75, 0.0, 2.5, 10.0]], (5, 1)))


def test_scale_crop_boxes_follow_the_short_side():
    boxes = np_(
        image_ops.sample_scale_crop_boxes(
            1000, (50, 100), (20, 20), (25, 50), seed=keras.random.SeedGenerator(3)
        )
    )
    top, left, h, w = boxes.T
    short = 20 / h * 50  # resized short side
    assert short.min() >= 25 - 1e-3 and short.max() <= 50 + 1e-3
    np.testing.assert_allclose(h, w, rtol=1e-5)
    assert np.all(top + h <= 50 + 1e-3) and np.all(left + w <= 100 + 1e-3)


# ----------------------------------------------------------------------------
# PCA colour
# ----------------------------------------------------------------------------


def test_rgb_covariance_eigen_matches_eigh():
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(5000, 3)) @ np.array(
        [[1.0, 0.5, 0.2], [0.0, 0.6, 0.1], [0.0, 0.0, 0.2]]
    )
    val, vec = image_ops.rgb_covariance_eigen(
        len(pixels), pixels.sum(0), pixels.T @ pixels
    )
    ref_val, ref_vec = np.linalg.eigh(np.cov(pixels.T))
    np.testing.assert_allclose(val, ref_val[::-1], rtol=1e-8)
    np.testing.assert_allclose(np.abs(vec.T @ ref_vec[:, ::-1]), np.eye(3), atol=1e-8)


def test_pca_color_offset_is_the_sum_of_scaled_eigenvectors():
    eigval = np.array(image_ops.IMAGENET_PCA_EIGVAL, "float32")
    eigvec = np.array(image_ops.IMAGENET_PCA_EIGVEC, "float32")
    alpha = np.array([[1.0, 0.0, 0.0], [0.1, -0.2, 0.3]], "float32")
    out = np_(image_ops.pca_color_offset(alpha, eigval, eigvec))
    expected = np.stack(
        [sum(a[i] * eigval[i] * eigvec[:, i] for i in range(3)) for a in alpha]
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)


# ----------------------------------------------------------------------------
# AutoAugment operations against PIL (uint8 reference implementations)
# ----------------------------------------------------------------------------


def _pil_batch(x01, fn):
    from PIL import Image

    out = []
    for img in np.round(x01 * 255).astype("uint8"):
        out.append(np.asarray(fn(Image.fromarray(img))))
    return np.stack(out).astype("float32") / 255.0


@pytest.fixture
def photos():
    x = toolkit.images(3, 20, 24, 3, dtype="uint8", seed=4).astype("float32")
    x[1] = x[1] * 0.4 + 60  # low contrast image
    return np.round(x) / 255.0


@pytest.mark.parametrize(
    "name, ours, pil",
    [
        ("equalize", image_ops.equalize, "equalize"),
        ("autocontrast", image_ops.autocontrast, "autocontrast"),
        ("invert", image_ops.invert, "invert"),
    ],
)
def test_parameter_free_ops_match_pil(photos, name, ours, pil):
    PIL = pytest.importorskip("PIL.ImageOps")
    expected = _pil_batch(photos, getattr(PIL, pil))
    got = np_(ours(ops.convert_to_tensor(photos)))
    np.testing.assert_allclose(got, expected, atol=1.01 / 255)


def test_equalize_is_exactly_pil_on_uint8_images():
    """Bit-exact, also where PIL keeps the image (one value, or a tiny step)."""
    ImageOps = pytest.importorskip("PIL.ImageOps")
    from PIL import Image

    rng = np.random.default_rng(7)
    images = np.stack(
        [
            rng.integers(0, 256, (16, 16, 3)),
            rng.integers(100, 104, (16, 16, 3)),  # four values
            np.full((16, 16, 3), 77),  # one value: unchanged
            np.where(rng.random((16, 16, 3)) < 0.02, 255, 3),  # step of 0 or 1
            np.clip(rng.normal(128, 20, (16, 16, 3)), 0, 255),
        ]
    ).astype("uint8")
    expected = np.stack(
        [np.asarray(ImageOps.equalize(Image.fromarray(img))) for img in images]
    )
    got = np_(image_ops.equalize(ops.convert_to_tensor(images / 255.0, "float32")))
    np.testing.assert_array_equal(np.round(got * 255).astype("uint8"), expected)


def test_solarize_and_posterize_match_pil(photos):
    ImageOps = pytest.importorskip("PIL.ImageOps")
    got = np_(image_ops.solarize(photos, np.full(3, 128 / 255, "float32")))
    np.testing.assert_allclose(
        got, _pil_batch(photos, lambda im: ImageOps.solarize(im, 128)), atol=1e-5
    )
    got = np_(image_ops.posterize(photos, np.array([4, 6, 8], "float32")))
    for i, bits in enumerate([4, 6, 8]):
        ref = _pil_batch(
            photos[i : i + 1], lambda im, b=bits: ImageOps.posterize(im, b)
        )
        np.testing.assert_allclose(got[i : i + 1], ref, atol=1e-5)


@pytest.mark.parametrize(
    "ours, pil",
    [
        (image_ops.adjust_brightness, "Brightness"),
        (image_ops.adjust_color, "Color"),
        (image_ops.adjust_contrast, "Contrast"),
        (image_ops.adjust_sharpness, "Sharpness"),
    ],
)
def test_enhance_ops_match_pil(photos, ours, pil):
    ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
    factors = np.array([0.3, 1.0, 1.7], "float32")
    got = np_(ours(ops.convert_to_tensor(photos), factors))
    for i, f in enumerate(factors):
        ref = _pil_batch(
            photos[i : i + 1], lambda im, f=f: getattr(ImageEnhance, pil)(im).enhance(f)
        )
        # PIL rounds its intermediate (degenerate) image to uint8.
        tol = 3.5 / 255 if pil == "Contrast" else 2.01 / 255
        np.testing.assert_allclose(got[i : i + 1], ref, atol=tol)


def test_geometric_transforms_translate_and_identity():
    kind = np.array([0, 3, 4], "int32")
    mag = np.array([0.3, 0.25, -0.5], "float32")
    t = np_(image_ops.geometric_transforms(kind, mag, (8, 16)))
    np.testing.assert_allclose(t[0], [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(t[1], [1, 0, 4, 0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(t[2], [1, 0, 0, 0, 1, -4, 0, 0], atol=1e-6)


def test_rotation_keeps_the_centre_fixed():
    t = np_(image_ops.geometric_transforms(np.array([5]), np.array([30.0]), (9, 9)))[0]
    cx = cy = 4.0
    assert abs(t[0] * cx + t[1] * cy + t[2] - cx) < 1e-5
    assert abs(t[3] * cx + t[4] * cy + t[5] - cy) < 1e-5


# ----------------------------------------------------------------------------
# Pixel noise
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["salt_and_pepper", "flip", "gaussian"])
def test_pixel_noise_hits_the_rate(mode):
    x = np.full((4, 64, 64, 3), 100.0, "float32")
    out = np_(
        image_ops.pixel_noise(
            x, 0.2, mode, (0, 255), 0.2, seed=keras.random.SeedGenerator(0)
        )
    )
    hit = np.any(out != x, axis=-1)
    assert abs(hit.mean() - 0.2) < 0.02
    if mode == "salt_and_pepper":
        assert set(np.unique(out[hit])) <= {0.0, 255.0}
    elif mode == "flip":
        np.testing.assert_allclose(out[hit], 155.0)
    assert out.min() >= 0 and out.max() <= 255


# ----------------------------------------------------------------------------
# Test-time views
# ----------------------------------------------------------------------------


def test_tta_views_ten_crop_layout():
    x = toolkit.images(2, 6, 6, 1)
    views = np_(image_ops.tta_views(x, (4, 4), crops="ten"))
    assert views.shape == (10, 2, 4, 4, 1)
    np.testing.assert_allclose(views[0], x[:, 1:5, 1:5])  # centre
    np.testing.assert_allclose(views[1], x[:, 1:5, 1:5][:, :, ::-1])  # mirror
    np.testing.assert_allclose(views[2], x[:, :4, :4])  # top-left
    np.testing.assert_allclose(views[8], x[:, 2:, 2:])  # bottom-right


def test_tta_views_padding_reflects_and_scales_resize():
    x = toolkit.images(1, 4, 4, 1)
    views = np_(image_ops.tta_views(x, (4, 4), crops="five", flips=False, padding=1))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_allclose(views[1], padded[:, :4, :4])
    views = np_(
        image_ops.tta_views(x, (4, 4), crops="center", flips=False, scales=[4, 8])
    )
    assert views.shape == (2, 1, 4, 4, 1)
    np.testing.assert_allclose(views[0], x)
