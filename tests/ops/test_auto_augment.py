"""Tests for kerasreg.ops.auto_augment: AutoAugment's operations against PIL."""

import numpy as np
import pytest
from keras import ops

from kerasreg.ops import auto_augment
from tests import toolkit
from tests.toolkit import to_numpy as np_


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
        ("equalize", auto_augment.equalize, "equalize"),
        ("autocontrast", auto_augment.autocontrast, "autocontrast"),
        ("invert", auto_augment.invert, "invert"),
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
    got = np_(auto_augment.equalize(ops.convert_to_tensor(images / 255.0, "float32")))
    np.testing.assert_array_equal(np.round(got * 255).astype("uint8"), expected)


def test_solarize_and_posterize_match_pil(photos):
    ImageOps = pytest.importorskip("PIL.ImageOps")
    got = np_(auto_augment.solarize(photos, np.full(3, 128 / 255, "float32")))
    np.testing.assert_allclose(
        got, _pil_batch(photos, lambda im: ImageOps.solarize(im, 128)), atol=1e-5
    )
    got = np_(auto_augment.posterize(photos, np.array([4, 6, 8], "float32")))
    for i, bits in enumerate([4, 6, 8]):
        ref = _pil_batch(
            photos[i : i + 1], lambda im, b=bits: ImageOps.posterize(im, b)
        )
        np.testing.assert_allclose(got[i : i + 1], ref, atol=1e-5)


@pytest.mark.parametrize(
    "ours, pil",
    [
        (auto_augment.adjust_brightness, "Brightness"),
        (auto_augment.adjust_color, "Color"),
        (auto_augment.adjust_contrast, "Contrast"),
        (auto_augment.adjust_sharpness, "Sharpness"),
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
    t = np_(auto_augment._geometric_transforms(kind, mag, (8, 16)))
    np.testing.assert_allclose(t[0], [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(t[1], [1, 0, 4, 0, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(t[2], [1, 0, 0, 0, 1, -4, 0, 0], atol=1e-6)


def test_rotation_keeps_the_centre_fixed():
    t = np_(
        auto_augment._geometric_transforms(np.array([5]), np.array([30.0]), (9, 9))
    )[0]
    cx = cy = 4.0
    assert abs(t[0] * cx + t[1] * cy + t[2] - cx) < 1e-5
    assert abs(t[3] * cx + t[4] * cy + t[5] - cy) < 1e-5
