"""The one layer walker (`kerasreg._walk`)."""

import keras

from kerasreg._walk import is_leaf, walk_layers


def _nested():
    shared = keras.layers.Dense(4, name="shared")
    inner = keras.Sequential([keras.Input((4,)), shared], name="inner")
    again = keras.Sequential([keras.Input((4,)), shared], name="again")
    outer = keras.Sequential(
        [keras.Input((4,)), inner, again, keras.layers.Dense(2, name="top")],
        name="outer",
    )
    return outer


def test_pre_order_each_layer_once():
    names = [layer.name for layer in walk_layers(_nested())]
    assert names == ["outer", "inner", "shared", "again", "top"]


def test_expand_and_leaves():
    model = _nested()
    top_only = [layer.name for layer in walk_layers(model, expand=lambda _: False)]
    assert top_only == ["outer", "inner", "again", "top"]
    leaves = [layer.name for layer in filter(is_leaf, walk_layers(model))]
    assert leaves == ["shared", "top"]
    pipeline = keras.layers.Pipeline([keras.layers.RandomFlip()])
    assert [type(x).__name__ for x in walk_layers(pipeline)] == [
        "Pipeline",
        "RandomFlip",
    ]
