"""Tests for RandomResizedCrop."""

import keras
import numpy as np
import pytest

from kerasreg.layers import RandomResizedCrop
from tests import toolkit
from tests.toolkit import to_numpy as np_


def ramp(n=6, h=16, w=24):
    """Identical images whose pixel values encode their coordinates."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    img = np.stack([yy * 10.0, xx * 10.0, np.zeros_like(xx, dtype=float)], -1)
    return np.repeat(img[None], n, 0).astype("float32")


def test_layer_battery(tmp_path):
    x = toolkit.images(8, 12, 12, 3)
    toolkit.check_layer(
        lambda: RandomResizedCrop(8, 8, seed=1), x, tmp_path, tf_data=True
    )


def test_every_image_gets_its_own_crop():
    x = ramp()
    out = np_(RandomResizedCrop(8, 8, scale=(0.1, 0.5), seed=2)(x))
    # The crop's top-left pixel encodes where the box starts.
    corners = out[:, 0, 0, :2]
    assert len({tuple(np.round(c, 1)) for c in corners}) == len(x)


def test_crops_stay_inside_the_image_and_keep_its_content():
    x = ramp(64)
    out = np_(RandomResizedCrop(8, 8, scale=(0.2, 1.0), seed=3)(x))
    # Coordinates decoded from the pixels lie inside the image ...
    assert out[..., 0].min() >= -1e-3 and out[..., 0].max() <= 150 + 1e-3
    assert out[..., 1].min() >= -1e-3 and out[..., 1].max() <= 230 + 1e-3
    # ... and are monotonic (a crop, not a flip or a shuffle).
    assert np.all(np.diff(out[..., 1], axis=2) >= -1e-3)
    assert np.all(np.diff(out[..., 0], axis=1) >= -1e-3)


def test_full_scale_with_the_image_ratio_is_identity():
    x = toolkit.images(2, 16, 24, 3)
    out = np_(RandomResizedCrop(16, 24, scale=(1.0, 1.0), ratio=(1.5, 1.5), seed=0)(x))
    np.testing.assert_allclose(out, x, atol=1e-2)


def test_inference_is_the_centre_crop():
    x = toolkit.images(2, 16, 24, 3)
    out = np_(RandomResizedCrop(16, 16, seed=0)(x, training=False))
    np.testing.assert_allclose(out, x[:, :, 4:20], atol=1e-3)


def test_seeds_reproduce_and_uint8_single_image_works():
    x = toolkit.images(4, 16, 16, 3, dtype="uint8")
    a = np_(RandomResizedCrop(8, 8, seed=4)(x))
    b = np_(RandomResizedCrop(8, 8, seed=4)(x))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert np_(RandomResizedCrop(8, 10, seed=4)(x[0])).shape == (8, 10, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": (0.5, 0.2)}, "scale"),
        ({"scale": (0.0, 1.0)}, "scale"),
        ({"scale": (0.5, 1.5)}, "scale"),
        ({"ratio": (-1.0, 1.0)}, "ratio"),
        ({"ratio": (2.0, 1.0)}, "ratio"),
        ({"height": 0}, "height"),
        ({"interpolation": "cubic"}, "interpolation"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"height": 8, "width": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        RandomResizedCrop(**args)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        RandomResizedCrop(4, 4)(np.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match="static"):
        RandomResizedCrop(4, 4)(keras.Input((None, None, 3)))


def test_compiles_with_xla_on_every_backend():
    # No projective transform (which has no XLA kernel on TensorFlow): the
    # model keeps jit_compile=True instead of falling back with a warning.
    model = toolkit.assert_jit_compile(
        lambda: RandomResizedCrop(8, 8, seed=0), toolkit.images(4, 12, 12, 3)
    )
    assert model.jit_compile is True
