"""Tests for AugmentationLayer: tf.data on both backends, input handling."""

import keras
import numpy as np
import pytest

from kerasreg.layers import (
    AugmentationLayer,
    AutoAugment,
    PCAColorAugmentation,
    RandomResizedCrop,
)
from tests import toolkit
from tests.toolkit import to_numpy as np_

tf = pytest.importorskip("tensorflow")



class AddOffset(AugmentationLayer):
    """A minimal subclass: adds one random value per image."""

    def augment(self, images):
        noise = keras.random.uniform(
            (keras.ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator
        )
        return images + noise


def test_subclass_contract():
    x = toolkit.images(4, 5, 5, 3)
    out = np_(AddOffset(seed=1)(x))
    shift = (out - x).reshape(4, -1)
    assert np.allclose(shift, shift[:, :1], atol=1e-4)
    assert len(np.unique(np.round(shift[:, 0], 3))) == 4
    np.testing.assert_array_equal(np_(AddOffset()(x, training=False)), x)
    assert AddOffset().get_config()["value_range"] == [0.0, 255.0]


@pytest.mark.parametrize(
    "make, out_shape",
    [
        (lambda: PCAColorAugmentation(seed=1), (4, 16, 16, 3)),
        (lambda: RandomResizedCrop(8, 8, seed=1), (4, 8, 8, 3)),
        # A two-operation policy: the tf.data mechanism, not the whole table
        # (cheaper to compile on JAX).
        (
            lambda: AutoAugment([[("Equalize", 0.5, 0), ("Rotate", 0.5, 5)]], seed=1),
            (4, 16, 16, 3),
        ),
    ],
)
def test_tf_data_map_on_this_backend(make, out_shape):
    # On TensorFlow the layer runs in the tf.data graph; on JAX through
    # tf.numpy_function. Either way: static shapes, per-image randomness,
    # uint8 input, batched and unbatched elements.
    x = toolkit.images(8, 16, 16, 3, dtype="uint8")
    layer = make()
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(layer)
    assert tuple(ds.element_spec.shape[1:]) == out_shape[1:]
    outs = [o.numpy() for o in ds]
    assert [o.shape for o in outs] == [out_shape, out_shape]
    assert outs[0].dtype == np.float32
    assert not np.allclose(outs[0][0], outs[0][1])  # different images, anyway
    ds1 = tf.data.Dataset.from_tensor_slices(x).map(layer)
    assert next(iter(ds1)).shape == out_shape[1:]


def test_tf_data_map_is_reproducible_with_a_seed():
    x = np.repeat(toolkit.images(1, 16, 16, 3), 4, 0)

    def run():
        layer = PCAColorAugmentation(stddev=1.0, seed=3)
        ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(layer)
        return next(iter(ds)).numpy()

    a, b = run(), run()
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Same image four times, four different colour shifts.
    assert len({round(float(v), 3) for v in (a - x)[:, 0, 0, 0]}) == 4


def test_tf_data_map_in_training_pipeline_with_keras_layers():
    x = toolkit.images(16, 16, 16, 3, dtype="uint8")
    y = np.arange(16) % 2
    # Keras and kerasreg layers mapped one after the other (a plain
    # keras.Sequential cannot run in tf.data on JAX; see
    # kerasreg.augmentation.AugmentationPipeline for one that can).
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    pca = PCAColorAugmentation(seed=0)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(8)
        .map(lambda a, b: (flip(a, training=True), b))
        .map(lambda a, b: (pca(a, training=True), b))
    )
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_eager_tf_tensor_input():
    x = tf.constant(toolkit.images(2, 8, 8, 3))
    out = PCAColorAugmentation(seed=1)(x)
    assert tuple(out.shape) == (2, 8, 8, 3)
