"""The toolkit itself, proven on plain Keras layers and callbacks."""

import keras
import numpy as np
import pytest

from tests import toolkit


def test_check_layer_on_a_keras_layer(tmp_path):
    x = toolkit.images(8, 8, 8, 3, value_range=(0.0, 1.0))
    # Keras's Dropout is not a tf.data layer: on JAX it cannot run inside tf.data.
    toolkit.check_layer(
        lambda: keras.layers.Dropout(0.25, seed=1),
        x,
        tmp_path,
        tf_data=toolkit.BACKEND == "tensorflow",
    )


def test_roundtrip_detects_a_lost_weight(tmp_path):
    class Forgetful(keras.layers.Dense):
        def get_config(self):
            config = super().get_config()
            config["units"] = config["units"] + 1
            return config

    with pytest.raises(AssertionError):
        toolkit.assert_config_roundtrip(Forgetful(3))


def test_run_scripted_with_keras_early_stopping():
    cb = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1)
    logs = [{"val_loss": v} for v in (1.0, 0.9, 0.95, 0.97, 0.5)]
    # patience=1: the first epoch without improvement (0.95) stops training.
    assert toolkit.run_scripted(cb, logs) == 2


def test_deepcopy_and_reuse_with_keras_callback():
    cb, histories = toolkit.assert_deepcopy_and_reuse(
        lambda: keras.callbacks.EarlyStopping(patience=5), epochs=2
    )
    assert all(np.isfinite(h.history["loss"]).all() for h in histories)


def test_mirrored_strategy_has_two_replicas():
    if toolkit.BACKEND != "tensorflow":
        pytest.skip("TensorFlow only")
    import tensorflow as tf

    assert len(tf.config.list_logical_devices("CPU")) == 2
