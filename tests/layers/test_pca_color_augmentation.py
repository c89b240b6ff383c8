"""Tests for PCAColorAugmentation."""

from pathlib import Path

import keras
import numpy as np
import pytest

from kerasreg.layers import PCAColorAugmentation
from kerasreg.ops import pca_color
from tests import toolkit
from tests.toolkit import to_numpy as np_


def mid_images(n=8, size=6, seed=0):
    """Images away from the range limits, so that no clipping happens."""
    return toolkit.images(n, size, size, 3, value_range=(100, 150), seed=seed)


def test_layer_battery(tmp_path):
    x = toolkit.images(8, 8, 8, 3)
    toolkit.check_layer(lambda: PCAColorAugmentation(seed=1), x, tmp_path, tf_data=True)


def test_imagenet_eigen_pairs_are_the_default():
    layer = PCAColorAugmentation()
    np.testing.assert_allclose(np_(layer.eigval), [0.2175, 0.0188, 0.0045])
    np.testing.assert_allclose(
        np_(layer.eigvec),
        [
            [-0.5675, 0.7192, 0.4009],
            [-0.5808, -0.0045, -0.8140],
            [-0.5836, -0.6948, 0.4203],
        ],
    )
    assert layer.eigval.trainable is False and not layer.trainable_weights


def test_one_rgb_shift_per_image_and_different_between_images():
    x = mid_images()
    out = np_(PCAColorAugmentation(stddev=0.5, seed=3)(x, training=True))
    shift = out - x
    per_image = shift.reshape(len(x), -1, 3)
    np.testing.assert_allclose(per_image, per_image[:, :1, :].repeat(36, 1), atol=1e-3)
    offsets = per_image[:, 0, :]
    assert np.min(np.abs(offsets[1:] - offsets[0]).sum(-1)) > 1e-2


def test_offsets_follow_the_pca_distribution():
    # Offset covariance: P diag((stddev * lambda)^2) P^T, in value_range units.
    stddev = 0.5
    x = np.full((4000, 1, 1, 3), 127.5, "float32")
    out = np_(PCAColorAugmentation(stddev=stddev, seed=0)(x, training=True))
    offsets = out.reshape(-1, 3) - 127.5
    p = np.array(pca_color.IMAGENET_PCA_EIGVEC)
    lam = np.array(pca_color.IMAGENET_PCA_EIGVAL)
    expected = p @ np.diag((stddev * lam * 255) ** 2) @ p.T
    np.testing.assert_allclose(np.cov(offsets.T), expected, atol=0.08 * expected[0, 0])
    np.testing.assert_allclose(offsets.mean(0), 0.0, atol=1.0)


def test_value_range_rescales_the_offset_and_uint8_input_works():
    x8 = np.round(mid_images()).astype("uint8")
    a = np_(PCAColorAugmentation(seed=5, value_range=(0, 255))(x8))
    b = np_(
        PCAColorAugmentation(seed=5, value_range=(0, 1))(x8.astype("float32") / 255)
    )
    assert a.dtype == np.float32
    np.testing.assert_allclose(a / 255, b, atol=1e-5)


def test_seeds_reproduce_and_inference_is_identity():
    x = mid_images()
    a = np_(PCAColorAugmentation(seed=7)(x))
    b = np_(PCAColorAugmentation(seed=7)(x))
    c = np_(PCAColorAugmentation(seed=8)(x))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    np.testing.assert_array_equal(
        np_(PCAColorAugmentation(seed=7)(x, training=False)), x
    )


def test_single_image_input():
    x = mid_images()[0]
    out = np_(PCAColorAugmentation(seed=1)(x))
    assert out.shape == x.shape
    np.testing.assert_allclose(
        out - x, np.broadcast_to((out - x)[:1, :1], x.shape), atol=1e-3
    )


def _cifar_photos(n=300):
    from PIL import Image

    root = toolkit.cifar10_dir()
    files = sorted((Path(root) / "train").glob("*/*.jpg"))[:: max(1, 50000 // n)][:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_adapt_matches_numpy_eigh_on_real_photos():
    pytest.importorskip("PIL")
    photos = _cifar_photos()
    pixels = photos.reshape(-1, 3).astype("float64") / 255.0
    ref_val, ref_vec = np.linalg.eigh(np.cov(pixels.T))
    ref_val, ref_vec = ref_val[::-1], ref_vec[:, ::-1]

    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((photos, np.zeros(len(photos)))).batch(32)
    for data in (photos, ds, (b for b in np.array_split(photos, 7))):
        layer = PCAColorAugmentation()
        layer.adapt(data, batch_size=64)
        val, vec = np_(layer.eigval), np_(layer.eigvec)
        np.testing.assert_allclose(val, ref_val, rtol=1e-4)
        np.testing.assert_allclose(np.abs(vec.T @ ref_vec), np.eye(3), atol=1e-4)
    # Natural photos: a dominant "brightness" component, like ImageNet's.
    assert val[0] > 5 * val[1]
    assert np.all(vec[:, 0] > 0.4)


def test_adapt_in_other_value_range_gives_the_same_eigen_pairs():
    x = toolkit.images(16, 4, 4, 3, seed=1)
    a = PCAColorAugmentation()
    a.adapt(x)
    b = PCAColorAugmentation(value_range=(-1, 1))
    b.adapt(x / 127.5 - 1.0)
    np.testing.assert_allclose(np_(a.eigval), np_(b.eigval), rtol=1e-4)


def test_adapt_streams_with_steps():
    x = toolkit.images(16, 4, 4, 3, seed=1)
    a = PCAColorAugmentation()
    a.adapt(x, batch_size=4, steps=1)
    b = PCAColorAugmentation()
    b.adapt(x[:4])
    np.testing.assert_allclose(np_(a.eigvec), np_(b.eigvec), atol=1e-6)


def test_adapted_state_is_saved(tmp_path):
    x = toolkit.images(8, 6, 6, 3, seed=2)
    layer = PCAColorAugmentation(seed=1)
    layer.adapt(x)
    model = keras.Sequential([keras.Input((6, 6, 3)), layer])
    path = tmp_path / "pca.keras"
    model.save(path)
    loaded = keras.saving.load_model(path).layers[0]
    np.testing.assert_allclose(np_(loaded.eigval), np_(layer.eigval))
    np.testing.assert_allclose(np_(loaded.eigvec), np_(layer.eigvec))
    assert np_(loaded.eigval)[0] != pytest.approx(0.2175)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stddev": -0.1}, "stddev"),
        ({"value_range": (1, 1)}, "value_range"),
        ({"value_range": (255, 0)}, "value_range"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PCAColorAugmentation(**kwargs)


def test_bad_inputs():
    layer = PCAColorAugmentation()
    with pytest.raises(ValueError, match="RGB"):
        layer(np.zeros((2, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match="shape"):
        layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="RGB"):
        layer.adapt(np.zeros((2, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="no images"):
        layer.adapt(np.zeros((0, 4, 4, 3), "float32"))
