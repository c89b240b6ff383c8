"""Tests for kerasreg.augmentation.pipeline and AugmentationPipeline."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.augmentation import TASKS, AugmentationPipeline, pipeline
from tests import toolkit


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def flip_modes(aug):
    return [
        layer.mode for layer in aug.layers if isinstance(layer, keras.layers.RandomFlip)
    ]


def test_reexports():
    assert kerasreg.augmentation.TestTimeAugmentation is kerasreg.TestTimeAugmentation
    assert (
        kerasreg.augmentation.PCAColorAugmentation
        is kerasreg.layers.PCAColorAugmentation
    )


@pytest.mark.parametrize("task", ["digits", "text"])
def test_digits_and_text_are_never_flipped(task):
    aug = pipeline(task, strength=3.0)
    assert flip_modes(aug) == []
    # No layer mirrors: an asymmetric image never comes out mirrored.
    x = np.zeros((32, 12, 12, 1), "float32")
    x[:, 2:10, 2:4] = 255.0  # a bar on the left
    out = np_(pipeline(task, strength=0.1, seed=0)(x))
    left = out[:, :, :6].sum(axis=(1, 2, 3))
    right = out[:, :, 6:].sum(axis=(1, 2, 3))
    assert np.all(left > right)


def test_natural_flips_horizontally_and_aerial_both_ways():
    assert flip_modes(pipeline("natural")) == ["horizontal"]
    assert flip_modes(pipeline("aerial")) == ["horizontal_and_vertical"]


def test_strength_scales_the_magnitudes():
    weak = pipeline("digits", strength=0.5)
    strong = pipeline("digits", strength=2.0)
    assert strong.layers[0].factor[1] == pytest.approx(4 * weak.layers[0].factor[1])
    pca = [
        la for la in pipeline("natural", strength=2.0).layers if hasattr(la, "stddev")
    ]
    assert pca[0].stddev == pytest.approx(0.2)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_runs_and_keeps_the_shape(task):
    x = toolkit.images(4, 16, 16, 3, dtype="uint8")
    aug = pipeline(task, seed=1)
    assert isinstance(aug, keras.Sequential)
    out = np_(aug(x, training=True))
    assert out.shape == x.shape and np.all(np.isfinite(out))
    assert not np.allclose(out, x)
    np.testing.assert_allclose(np_(aug(x, training=False)), x)
    assert task in pipeline.__doc__


def test_pipeline_in_a_model_saves_and_loads(tmp_path):
    x = toolkit.images(4, 16, 16, 3)
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), pipeline("natural", seed=0), keras.layers.Flatten()]
    )
    path = tmp_path / "aug.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], AugmentationPipeline)
    np.testing.assert_allclose(np_(loaded(x)), np_(model(x)), atol=1e-5)


def test_pipeline_in_tf_data_on_this_backend():
    tf = pytest.importorskip("tensorflow")
    x = toolkit.images(8, 16, 16, 3, dtype="uint8")
    aug = pipeline("natural", seed=0)
    ds = (
        tf.data.Dataset.from_tensor_slices(x)
        .batch(4)
        .map(lambda a: aug(a, training=True))
    )
    outs = [o.numpy() for o in ds]
    assert [o.shape for o in outs] == [(4, 16, 16, 3)] * 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "faces"}, "task"),
        ({"strength": 0.0}, "strength"),
        ({"strength": 5.0}, "strength"),
        ({"value_range": (1, 0)}, "value_range"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipeline(**kwargs)
