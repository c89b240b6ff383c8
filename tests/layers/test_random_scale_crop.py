"""Tests for RandomScaleCrop."""

import numpy as np
import pytest

from kerasreg.layers import RandomScaleCrop
from tests import toolkit
from tests.toolkit import to_numpy as np_


def test_layer_battery(tmp_path):
    x = toolkit.images(8, 12, 12, 3)
    toolkit.check_layer(
        lambda: RandomScaleCrop(8, 8, short_side=(8, 14), seed=1),
        x,
        tmp_path,
        tf_data=True,
    )


def test_without_resizing_each_image_gets_its_own_window():
    # short side fixed to the image's: pure random crops, different per image.
    x = np.repeat(toolkit.images(1, 16, 32, 3), 12, 0)
    layer = RandomScaleCrop(
        16, 16, short_side=(16, 16), interpolation="nearest", seed=0
    )
    out = np_(layer(x))
    offsets = []
    for img in out:
        matches = [k for k in range(17) if np.allclose(img, x[0, :, k : k + 16])]
        assert matches, "each output is a 16x16 window of the image"
        offsets.append(matches[0])
    assert len(set(offsets)) > 4


def test_short_side_sets_the_zoom():
    # Resizing a 16-pixel image to a short side of 32 doubles it: a 16x16
    # crop then covers half the image in each direction.
    yy = np.repeat(np.arange(16, dtype="float32")[:, None], 16, 1)
    x = np.repeat(np.stack([yy, yy.T, yy], -1)[None], 8, 0)
    out = np_(RandomScaleCrop(16, 16, short_side=(32, 32), seed=1)(x))
    span = out[:, -1, -1, 1] - out[:, 0, 0, 1]
    np.testing.assert_allclose(span, 7.5, atol=0.3)


def test_inference_resizes_then_takes_the_centre():
    x = toolkit.images(2, 16, 24, 3)
    out = np_(RandomScaleCrop(16, 16, short_side=(16, 20))(x, training=False))
    np.testing.assert_allclose(out, x[:, :, 4:20], atol=1e-3)
    out = np_(
        RandomScaleCrop(8, 8, short_side=(8, 20), inference_short_side=16)(
            x, training=False
        )
    )
    np.testing.assert_allclose(out, x[:, 4:12, 8:16], atol=1e-3)


def test_seeds_reproduce():
    x = toolkit.images(4, 16, 16, 3)
    a = np_(RandomScaleCrop(8, 8, short_side=(8, 16), seed=3)(x))
    b = np_(RandomScaleCrop(8, 8, short_side=(8, 16), seed=3)(x))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"short_side": (4, 16)}, "short_side"),  # crop larger than the image
        ({"short_side": (20, 10)}, "short_side"),
        ({"inference_short_side": 4}, "inference_short_side"),
        ({"width": -1}, "width"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"height": 8, "width": 8, "short_side": (8, 16), **kwargs}
    with pytest.raises(ValueError, match=match):
        RandomScaleCrop(**args)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        RandomScaleCrop(4, 4, short_side=(4, 8))(np.zeros((1, 2, 8, 8, 3), "float32"))


def test_compiles_with_xla_on_every_backend():
    # No projective transform (which has no XLA kernel on TensorFlow): the
    # model keeps jit_compile=True instead of falling back with a warning.
    model = toolkit.assert_jit_compile(
        lambda: RandomScaleCrop(8, 8, short_side=(8, 14), seed=0),
        toolkit.images(4, 12, 12, 3),
    )
    assert model.jit_compile is True
