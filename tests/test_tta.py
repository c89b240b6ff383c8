"""Tests for TestTimeAugmentation."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import TestTimeAugmentation
from tests import toolkit
from tests.toolkit import to_numpy as np_


def classifier(size=8, classes=4, softmax=True):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax" if softmax else None),
        ]
    )


def explicit_views(x, crop, crops, flips, scales, padding):
    """The views written out one by one, in NumPy (plus Keras's resize)."""
    views = []
    for scale in scales or [None]:
        img = x
        if scale is not None:
            h, w = x.shape[1:3]
            f = scale / min(h, w)
            size = (round(h * f), round(w * f))
            img = np_(keras.ops.image.resize(x, size, antialias=True))
        if padding:
            img = np.pad(
                img, ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)), mode="reflect"
            )
        h, w = img.shape[1:3]
        starts = [((h - crop) // 2, (w - crop) // 2)]
        if crops != "center":
            starts += [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop)]
        for y0, x0 in starts:
            v = img[:, y0 : y0 + crop, x0 : x0 + crop]
            views.append(v)
            if flips or crops == "ten":
                views.append(v[:, :, ::-1])
    return views


@pytest.mark.parametrize(
    "kwargs, n_views",
    [
        ({"crops": "ten", "padding": 2}, 10),
        ({"crops": "five", "flips": False, "padding": 1}, 5),
        ({"crops": "center", "flips": True, "scales": [8, 12]}, 4),
        ({"crops": "ten", "scales": [10], "reduce": "geometric_mean"}, 10),
        ({"crops": "five", "flips": True, "padding": 2, "reduce": "max"}, 10),
        ({"crops": "ten", "padding": 2, "reduce": "vote"}, 10),
    ],
)
def test_equals_the_explicit_loop_over_views(kwargs, n_views):
    net = classifier()
    x = toolkit.images(3, 8, 8, 3, value_range=(0, 1))
    tta = TestTimeAugmentation(net, **kwargs)
    assert tta.num_views == n_views
    views = explicit_views(
        x,
        8,
        kwargs["crops"],
        kwargs.get("flips", True),
        kwargs.get("scales"),
        kwargs.get("padding", 0),
    )
    assert len(views) == n_views
    probs = np.stack([np_(net(v, training=False)) for v in views])
    reduce = kwargs.get("reduce", "mean")
    if reduce == "mean":
        expected = probs.mean(0)
    elif reduce == "geometric_mean":
        g = np.exp(np.log(probs).mean(0))
        expected = g / g.sum(-1, keepdims=True)
    elif reduce == "vote":
        expected = np.eye(probs.shape[-1])[probs.argmax(-1)].mean(0)
    else:
        m = probs.max(0)
        expected = m / m.sum(-1, keepdims=True)
    np.testing.assert_allclose(np_(tta(x)), expected, atol=1e-5)
    np.testing.assert_allclose(
        tta.predict(x, batch_size=2, verbose=0), expected, atol=1e-5
    )


def test_one_batched_forward_pass():
    calls = []

    class Spy(keras.layers.Layer):
        def call(self, x):
            calls.append(tuple(x.shape))
            return x

    inputs = keras.Input((8, 8, 3))
    h = Spy()(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    net = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    tta = TestTimeAugmentation(net, crops="ten", padding=2)
    calls.clear()
    tta(toolkit.images(4, 8, 8, 3))
    assert calls == [(40, 8, 8, 3)]


def test_from_logits_applies_softmax():
    logits_net = classifier(softmax=False)
    x = toolkit.images(2, 8, 8, 3, value_range=(0, 1))
    tta = TestTimeAugmentation(
        logits_net, crops="center", flips=False, from_logits=True
    )
    expected = np_(keras.ops.softmax(logits_net(x), axis=-1))
    np.testing.assert_allclose(np_(tta(x)), expected, atol=1e-5)


def test_predict_evaluate_and_jit():
    net = classifier()
    x = toolkit.images(8, 8, 8, 3, value_range=(0, 1))
    y = np.arange(8) % 4
    tta = TestTimeAugmentation(net, crops="ten", padding=2)
    tta.compile(
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    loss, acc = tta.evaluate(x, y, batch_size=4, verbose=0)
    probs = tta.predict(x, batch_size=4, verbose=0)
    ref = -np.mean(np.log(probs[np.arange(8), y]))
    assert loss == pytest.approx(ref, rel=1e-4)
    assert acc == pytest.approx(np.mean(probs.argmax(-1) == y))


def test_save_and_load(tmp_path):
    net = classifier()
    x = toolkit.images(2, 8, 8, 3, value_range=(0, 1))
    tta = TestTimeAugmentation(
        net, crops="five", scales=[8, 10], reduce="geometric_mean"
    )
    expected = np_(tta(x))
    path = tmp_path / "tta.keras"
    tta.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TestTimeAugmentation)
    assert loaded.get_config()["scales"] == [8, 10]
    np.testing.assert_allclose(np_(loaded(x)), expected, atol=1e-6)


def test_image_size_differs_from_the_crop():
    net = classifier(size=8)
    x = toolkit.images(2, 12, 16, 3, value_range=(0, 1))
    tta = TestTimeAugmentation(net, crops="ten", image_size=(12, 16))
    assert tta.predict(x, verbose=0).shape == (2, 4)
    assert kerasreg.TestTimeAugmentation is TestTimeAugmentation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crops": "six"}, "crops"),
        ({"reduce": "median"}, "reduce"),
        ({"padding": -1}, "padding"),
        ({"crop_size": (10, 10)}, "larger than the image"),
        ({"scales": [4]}, "larger than the image"),
        ({"flips": "yes"}, "flips"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TestTimeAugmentation(classifier(), **kwargs)


def test_bad_model_and_input():
    with pytest.raises(ValueError, match="model"):
        TestTimeAugmentation("resnet")
    tta = TestTimeAugmentation(classifier(), crops="center")
    with pytest.raises(ValueError):
        tta(np.zeros((2, 10, 10, 3), "float32"))
