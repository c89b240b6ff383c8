"""Tests for kerasreg.ops.noise: pixel corruption."""

import keras
import numpy as np
import pytest

from kerasreg.ops import noise
from tests.toolkit import to_numpy as np_


@pytest.mark.parametrize("mode", ["salt_and_pepper", "flip", "gaussian"])
def test_pixel_noise_hits_the_rate(mode):
    x = np.full((4, 64, 64, 3), 100.0, "float32")
    out = np_(
        noise.pixel_noise(
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
