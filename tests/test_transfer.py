"""Tests of kerasreg.transfer."""

import keras
import numpy as np
import pytest

from kerasreg import transfer
from tests import toolkit


def _cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="conv1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.Activation("relu", name="relu1"),
            keras.layers.Conv2D(8, 3, padding="same", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(16, activation="relu", name="fc"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ]
    )


def _stats(bn):
    return [np.array(bn.moving_mean), np.array(bn.moving_variance)]


def test_freeze_keeps_batchnorm_in_inference_mode():
    model = _cnn()
    x = toolkit.images(16, 8, 8, 3, value_range=(0, 10))
    frozen = transfer.freeze(model, up_to="relu1")
    assert [layer.name for layer in frozen] == ["conv1", "bn1", "relu1"]
    assert [layer.trainable for layer in model.layers] == [False] * 3 + [True] * 4
    bn = model.get_layer("bn1")
    before = _stats(bn)
    model(x, training=True)
    for a, b in zip(before, _stats(bn)):
        np.testing.assert_array_equal(a, b)
    # Inference mode: the output uses the moving statistics, not the batch's.
    out_train = bn(x[:, :, :, :1].repeat(4, -1), training=True)
    out_infer = bn(x[:, :, :, :1].repeat(4, -1), training=False)
    np.testing.assert_allclose(np.array(out_train), np.array(out_infer), atol=1e-6)
    # fit leaves them alone too.
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(before, _stats(bn)):
        np.testing.assert_array_equal(a, b)
    # A trainable BatchNormalization does update them (the check can fail).
    bn.trainable = True
    model(x, training=True)
    assert not np.array_equal(before[0], _stats(bn)[0])


def test_freeze_by_index_and_all():
    model = _cnn()
    transfer.freeze(model, up_to=-2)
    assert [layer.trainable for layer in model.layers] == [False] * 6 + [True]
    transfer.freeze(model)
    assert not model.trainable_weights
    with pytest.raises(ValueError, match="up_to"):
        transfer.freeze(model, up_to="nope")
    with pytest.raises(ValueError, match="up_to"):
        transfer.freeze(model, up_to=7)


def test_unfreeze_top_counts_layers_with_weights_and_skips_batchnorm():
    model = _cnn()
    transfer.freeze(model)
    names = [layer.name for layer in transfer.unfreeze_top(model, 3)]
    assert names == ["conv2", "fc", "head"]
    assert not model.get_layer("bn1").trainable
    assert not model.get_layer("conv1").trainable
    transfer.freeze(model)
    unfrozen = transfer.unfreeze_top(model, 4, include_batchnorm=True)
    assert [layer.name for layer in unfrozen] == ["bn1", "conv2", "fc", "head"]
    assert model.get_layer("bn1").trainable


def test_unfreeze_top_inside_nested_model():
    base = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="b1"),
            keras.layers.Dense(8, name="b2"),
        ]
    )
    model = keras.Sequential([base, keras.layers.Dense(2, name="top")])
    base.trainable = False  # The usual Keras idiom.
    unfrozen = transfer.unfreeze_top(model, 2)
    assert [layer.name for layer in unfrozen] == ["b2", "top"]
    assert base.trainable and not base.get_layer("b1").trainable
    trainable = {id(v) for v in model.trainable_weights}
    expected = base.get_layer("b2").weights + model.get_layer("top").weights
    assert trainable == {id(v) for v in expected}


@pytest.mark.parametrize(
    "n, similar, key",
    [
        (50, True, "linear_probe"),
        (500, False, "multi_depth_probe"),
        (5000, True, "fine_tune_few"),
        (5000, False, "fine_tune_many"),
        (999, True, "linear_probe"),
        (1000, True, "fine_tune_few"),
    ],
)
def test_recommend_strategy(n, similar, key):
    strategy = transfer.recommend_strategy(n, similar)
    assert strategy.key == key
    assert strategy.little_data == (n < 1000) and strategy.similar_domain == similar
    assert str(strategy)


def test_recommend_strategy_bad_input():
    with pytest.raises(ValueError, match="n_examples"):
        transfer.recommend_strategy(0, True)
    with pytest.raises(ValueError, match="similar_domain"):
        transfer.recommend_strategy(10, "yes")
    assert (
        transfer.recommend_strategy(500, True, little_data=100).key == "fine_tune_few"
    )


def test_linear_probe_model_multi_depth():
    model = _cnn()
    probe = transfer.linear_probe_model(model, ["relu1", "conv2", "fc"], 5)
    x = toolkit.images(4, 8, 8, 3)
    assert probe.predict(x, verbose=0).shape == (4, 5)
    # Only the new classifier trains: 4 + 8 + 16 features -> 5 classes.
    assert sum(int(np.prod(w.shape)) for w in probe.trainable_weights) == 28 * 5 + 5
    with pytest.raises(ValueError, match="layers"):
        transfer.linear_probe_model(model, [], 5)


def test_fine_tune_two_stages():
    model = _cnn()
    x = toolkit.images(32, 8, 8, 3, value_range=(0, 1))
    y = np.arange(32) % 3
    frozen_before = [np.array(w) for w in model.get_layer("conv1").weights]
    bn_before = _stats(model.get_layer("bn1"))
    conv2_before = np.array(model.get_layer("conv2").kernel)
    result = transfer.fine_tune(
        model,
        (x, y),
        validation_data=(x[:8], y[:8]),
        head_layers=1,
        unfreeze=2,
        probe_epochs=1,
        fine_tune_epochs=1,
        batch_size=8,
    )
    assert result.unfrozen == ["conv2", "fc"]
    assert len(result.probe.history["loss"]) == 1
    assert "val_accuracy" in result.fine_tune.history
    lr = float(np.array(model.optimizer.learning_rate))
    assert lr == pytest.approx(1e-4)
    for a, b in zip(frozen_before, model.get_layer("conv1").weights):
        np.testing.assert_array_equal(a, np.array(b))
    for a, b in zip(bn_before, _stats(model.get_layer("bn1"))):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(conv2_before, np.array(model.get_layer("conv2").kernel))
    with pytest.raises(ValueError, match="head_layers"):
        transfer.fine_tune(model, (x, y), head_layers=10)
