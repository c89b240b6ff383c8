"""Tests for kerasreg.augmentation.pipeline and AugmentationPipeline."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.augmentation import TASKS, AugmentationPipeline, pipeline
from tests import toolkit
from tests.toolkit import to_numpy as np_


def flip_modes(aug):
    return [
        layer.mode for layer in aug.layers if isinstance(layer, keras.layers.RandomFlip)
    ]


def test_one_import_path_per_name():
    """The recipes here; the layers in `kerasreg.layers`; TTA at the top."""
    assert sorted(kerasreg.augmentation.__all__) == [
        "AugmentationPipeline",
        "TASKS",
        "pipeline",
    ]
    for name in ("TestTimeAugmentation", "AutoAugment", "RandomResizedCrop"):
        assert name not in kerasreg.augmentation.__all__
    assert "TestTimeAugmentation" in kerasreg.__all__
    assert "PCAColorAugmentation" in kerasreg.layers.__all__


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


def kerasreg_layers():
    return [
        kerasreg.layers.AutoAugment("cifar10", seed=0),
        kerasreg.layers.PCAColorAugmentation(seed=0),
        kerasreg.layers.RandomPixelNoise(0.1, seed=0),
        kerasreg.layers.RandomResizedCrop(8, 8, seed=0),
        kerasreg.layers.RandomScaleCrop(8, 8, (12, 16), seed=0),
    ]


def out_shape(layer, shape):
    return tuple(shape[:-3]) + (8, 8, 3) if hasattr(layer, "height") else shape


@pytest.mark.parametrize("first", ["image", "batch"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_pipeline_takes_an_image_or_a_batch_in_either_order(task, first):
    # Like Keras's preprocessing layers: not locked to the first call's
    # rank or batch size.
    x = toolkit.images(4, 16, 16, 3, dtype="uint8")
    inputs = [x[0], x, x[:3], x[1]] if first == "image" else [x, x[0], x[:3]]
    aug = pipeline(task, seed=1)
    for a in inputs:
        out = np_(aug(a, training=True))
        assert out.shape == a.shape and np.all(np.isfinite(out))
        np.testing.assert_allclose(np_(aug(a, training=False)), a)


@pytest.mark.parametrize("first", ["image", "batch"])
def test_layers_take_an_image_or_a_batch_in_either_order(first):
    x = toolkit.images(4, 16, 16, 3, dtype="uint8")
    inputs = [x[0], x, x[:3], x[1]] if first == "image" else [x, x[0], x[:3]]
    for layer in kerasreg_layers():
        for a in inputs:
            out = np_(layer(a, training=True))
            assert out.shape == out_shape(layer, a.shape), type(layer).__name__


def test_unbatched_and_batched_elements_in_tf_data():
    tf = pytest.importorskip("tensorflow")
    x = toolkit.images(6, 16, 16, 3, dtype="uint8")
    aug = pipeline("natural", seed=0)
    layers = kerasreg_layers()
    for stage in [aug, *layers]:
        single = tf.data.Dataset.from_tensor_slices(x)
        outs = [o.numpy() for o in single.map(lambda a, s=stage: s(a, training=True))]
        expected = out_shape(stage, (16, 16, 3))
        assert [o.shape for o in outs] == [expected] * 6, stage.name
        batched = single.batch(4).map(lambda a, s=stage: s(a, training=True))
        outs = [o.numpy() for o in batched]
        assert [o.shape[0] for o in outs] == [4, 2], stage.name
        assert all(o.shape[1:] == expected for o in outs)


def test_layers_pass_an_empty_batch_through():
    # As Keras's own layers do: (0, H, W, C) in, (0, h, w, C) out.
    tf = pytest.importorskip("tensorflow")
    x = np.zeros((0, 16, 16, 3), "uint8")
    for layer in kerasreg_layers():
        expected = out_shape(layer, x.shape)
        assert np_(layer(x, training=True)).shape == expected, layer.name
        ds = tf.data.Dataset.from_tensors(x).map(lambda t, s=layer: s(t))
        assert [o.numpy().shape for o in ds] == [expected], layer.name
