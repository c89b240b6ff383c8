import keras
import keras_tuner
import numpy as np
import pytest

from kerasreg.tuners import RegularizationHyperModel
from tests import toolkit


def _mlp(l2, dropout):
    reg = keras.regularizers.L2(l2) if l2 else None
    layers = [keras.Input((8,)), keras.layers.Dense(8, kernel_regularizer=reg)]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(3, activation="softmax"))
    return keras.Sequential(layers)


def _hm(build=_mlp, **kwargs):
    kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    return RegularizationHyperModel(build, **kwargs)


def _space(hp):
    return {p.name: p for p in hp.space}


def test_default_knobs_are_declared_log_and_linear():
    hp = keras_tuner.HyperParameters()
    model = _hm().build(hp)
    space = _space(hp)
    assert set(space) == {"learning_rate", "l2", "dropout"}
    assert space["learning_rate"].sampling == "log"
    assert (space["learning_rate"].min_value, space["learning_rate"].max_value) == (
        1e-6,
        1e-1,
    )
    assert space["l2"].sampling == "log"
    assert (space["l2"].min_value, space["l2"].max_value) == (1e-6, 1e1)
    assert space["dropout"].sampling == "linear"
    assert (space["dropout"].min_value, space["dropout"].max_value) == (0.0, 0.7)
    # The model is compiled with the trial's learning rate.
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(hp.get("learning_rate"))
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_values_reach_the_builder():
    received = {}

    def build(l2, dropout, drop_connect, augmentation):
        received.update(
            l2=l2, dropout=dropout, drop_connect=drop_connect, augmentation=augmentation
        )
        return _mlp(l2, dropout)

    hp = keras_tuner.HyperParameters()
    hp.values = {"l2": 0.03, "dropout": 0.25, "learning_rate": 0.002}
    model = _hm(build, drop_connect=0.1, augmentation=(0.0, 1.0)).build(hp)
    assert received["l2"] == 0.03 and received["dropout"] == 0.25
    assert received["drop_connect"] == 0.1  # Fixed ...
    assert type(_space(hp)["drop_connect"]).__name__ == "Fixed"  # ... and shown.
    assert 0.0 <= received["augmentation"] <= 1.0
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(0.002)


def test_knobs_switched_off_arrive_as_none_and_are_not_declared():
    received = {}

    def build(**knobs):
        received.update(knobs)
        return _mlp(knobs["l2"], knobs["dropout"])

    hp = keras_tuner.HyperParameters()
    _hm(build, l2=None, dropout=None).build(hp)
    assert set(_space(hp)) == {"learning_rate"}
    assert received["l2"] is None and received["dropout"] is None
    assert received["ema"] is None and received["drop_connect"] is None


def test_hp_builder_can_add_its_own_hyperparameters():
    def build(hp, l2, dropout):
        units = hp.Int("units", 4, 16, step=4)
        reg = keras.regularizers.L2(l2)
        return keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(units, kernel_regularizer=reg),
                keras.layers.Dropout(dropout),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    hp = keras_tuner.HyperParameters()
    model = _hm(build).build(hp)
    assert set(_space(hp)) == {"learning_rate", "l2", "dropout", "units"}
    assert model.layers[0].units == hp.get("units")


def test_builder_that_compiles_itself_gets_the_learning_rate():
    def build(learning_rate, l2, dropout):
        model = _mlp(l2, dropout)
        model.compile(keras.optimizers.SGD(learning_rate), "mse")
        return model

    hp = keras_tuner.HyperParameters()
    model = RegularizationHyperModel(build, learning_rate=(0.01, 0.1)).build(hp)
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(hp.get("learning_rate"))
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_ema_knob_sets_use_ema_and_validates_with_averaged_weights():
    x, y = toolkit.classification_data(32, 8, 3)
    hm = _hm(
        ema=(False, True), optimizer=keras.optimizers.SGD(0.01), metrics=["accuracy"]
    )
    hp = keras_tuner.HyperParameters()
    hp.values = {"ema": True}
    model = hm.build(hp)
    assert type(_space(hp)["ema"]).__name__ == "Boolean"
    assert model.optimizer.use_ema
    history = hm.fit(hp, model, x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])
    hp.values["ema"] = False
    assert not hm.build(hp).optimizer.use_ema


def test_optimizer_instance_is_not_shared_between_trials():
    opt = keras.optimizers.SGD(0.5, momentum=0.9)
    hm = _hm(optimizer=opt)
    a = hm.build(keras_tuner.HyperParameters()).optimizer
    b = hm.build(keras_tuner.HyperParameters()).optimizer
    assert a is not b and a is not opt
    assert a.momentum == 0.9 and isinstance(a, keras.optimizers.SGD)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(l2=(0.0, 1.0)), "l2"),  # log sampling with min <= 0.
        (dict(learning_rate=(-1e-3, 1e-1)), "learning_rate"),
        (dict(learning_rate=(1e-1, 1e-3)), "learning_rate"),  # min >= max.
        (dict(l2=(1e-3, 1e-3)), "l2"),
        (dict(dropout=(0.1, 1.0)), "dropout"),  # rate must stay < 1.
        (dict(dropout=1.5), "dropout"),
        (dict(dropout=(0.1, 0.5, "cubic")), "dropout"),
        (dict(dropout="high"), "dropout"),
        (dict(dropout=(0.0, 0.5, "log")), "min > 0 for log sampling"),
        (dict(ema="yes"), "ema"),
        (dict(drop_connect=0.2), "takes no `drop_connect` argument"),
        (dict(learning_rate=None), "learning_rate"),  # Needed to compile.
    ],
)
def test_bad_knobs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _hm(**kwargs)


def test_builder_that_compiles_must_accept_learning_rate():
    with pytest.raises(ValueError, match="takes no `learning_rate`"):
        RegularizationHyperModel(_mlp)
    with pytest.raises(ValueError, match="build_fn"):
        RegularizationHyperModel("not callable")
