"""Tests for RandomPixelNoise."""

import numpy as np
import pytest

from kerasreg.layers import RandomPixelNoise
from tests import toolkit
from tests.toolkit import to_numpy as np_


def test_layer_battery(tmp_path):
    x = toolkit.images(8, 8, 8, 3)
    toolkit.check_layer(
        lambda: RandomPixelNoise(0.1, seed=1), x, tmp_path, tf_data=True
    )


@pytest.mark.parametrize("mode", ["salt_and_pepper", "flip", "gaussian"])
def test_rate_per_image_and_mode(mode):
    x = np.full((6, 32, 32, 1), 0.25, "float32")
    out = np_(RandomPixelNoise(0.3, mode=mode, value_range=(0, 1), seed=2)(x))
    hit = out[..., 0] != 0.25
    assert abs(hit.mean() - 0.3) < 0.03
    # Every image has its own corrupted pixels.
    assert not np.array_equal(hit[0], hit[1])
    if mode == "salt_and_pepper":
        assert set(np.unique(out[hit])) == {0.0, 1.0}
    elif mode == "flip":
        np.testing.assert_allclose(out[hit], 0.75)
    else:
        assert 0.05 < out[hit].std() < 0.15 and out.min() >= 0 and out.max() <= 1


def test_all_channels_of_a_pixel_are_hit_together():
    x = np.full((2, 16, 16, 3), 128, "uint8")
    out = np_(RandomPixelNoise(0.5, mode="flip", seed=0)(x))
    hit = out != 128
    assert np.all(hit.all(-1) == hit.any(-1))


def test_seeds_reproduce_inference_identity_and_single_image():
    x = toolkit.images(2, 8, 8, 3)
    a = np_(RandomPixelNoise(0.2, seed=3)(x))
    np.testing.assert_array_equal(a, np_(RandomPixelNoise(0.2, seed=3)(x)))
    np.testing.assert_array_equal(np_(RandomPixelNoise(0.2)(x, training=False)), x)
    assert np_(RandomPixelNoise(0.2)(x[0])).shape == x[0].shape


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rate": 1.5}, "rate"),
        ({"rate": 0.1, "mode": "speckle"}, "mode"),
        ({"rate": 0.1, "stddev": -1.0}, "stddev"),
        ({"rate": 0.1, "value_range": (3, 3)}, "value_range"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomPixelNoise(**kwargs)
