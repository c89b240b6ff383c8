"""Tests for kerasreg.ops.crop: per-image crop-and-resize and the box samplers."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasreg.ops import crop
from tests import toolkit
from tests.toolkit import to_numpy as np_


def test_crop_and_resize_whole_image_is_identity():
    x = toolkit.images(3, 12, 10, 3)
    boxes = np.tile(np.array([[0.0, 0.0, 12.0, 10.0]], "float32"), (3, 1))
    out = np_(crop.crop_and_resize(x, boxes, (12, 10)))
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_crop_and_resize_integer_box_is_a_slice():
    x = toolkit.images(2, 16, 16, 3)
    boxes = np.array([[2.0, 3.0, 8.0, 8.0], [5.0, 1.0, 8.0, 8.0]], "float32")
    out = np_(crop.crop_and_resize(x, boxes, (8, 8)))
    np.testing.assert_allclose(out[0], x[0, 2:10, 3:11], atol=1e-3)
    np.testing.assert_allclose(out[1], x[1, 5:13, 1:9], atol=1e-3)


def test_crop_and_resize_matches_keras_resize_when_upscaling():
    x = toolkit.images(1, 8, 8, 1)
    boxes = np.array([[0.0, 0.0, 8.0, 8.0]], "float32")
    out = np_(crop.crop_and_resize(x, boxes, (16, 16)))
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
    out = np_(crop.crop_and_resize(x, boxes, (12, 16), interpolation))
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
    def crop_fn(images, b):
        return crop.crop_and_resize(images, b, (5, 7))

    dynamic = crop_fn(tf.constant(x), tf.constant(boxes)).numpy()
    static = np_(crop.crop_and_resize(x, boxes, (5, 7)))
    np.testing.assert_allclose(dynamic, static, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"scale": (0.0, 1.0)}, "scale"), ({"ratio": (2.0, 1.0)}, "ratio")],
)
def test_resized_crop_boxes_reject_bad_ranges(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        crop.sample_resized_crop_boxes(4, (8, 8), **kwargs)


def test_resized_crop_boxes_respect_scale_ratio_and_image():
    boxes = np_(
        crop.sample_resized_crop_boxes(
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
        crop.sample_resized_crop_boxes(
            5, (40, 10), (0.9, 1.0), (4.0, 4.0), seed=keras.random.SeedGenerator(0)
        )
    )
    # Fallback: whole width, height = width / 4, centred vertically.
    np.testing.assert_allclose(boxes, np.tile([[18.75, 0.0, 2.5, 10.0]], (5, 1)))


def test_scale_crop_boxes_follow_the_short_side():
    boxes = np_(
        crop.sample_scale_crop_boxes(
            1000, (50, 100), (20, 20), (25, 50), seed=keras.random.SeedGenerator(3)
        )
    )
    top, left, h, w = boxes.T
    short = 20 / h * 50  # resized short side
    assert short.min() >= 25 - 1e-3 and short.max() <= 50 + 1e-3
    np.testing.assert_allclose(h, w, rtol=1e-5)
    assert np.all(top + h <= 50 + 1e-3) and np.all(left + w <= 100 + 1e-3)
