import keras
import numpy as np
import pytest

from kerasreg.ensembles import Ensemble, bagging, snapshot_paths
from tests import toolkit
from tests.toolkit import mirrored_strategy


def _member(seed, logits=False):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation=None if logits else "softmax"),
        ]
    )


def _x(n=10):
    return np.random.default_rng(0).normal(size=(n, 8)).astype("float32")


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.0]])
def test_reductions_match_numpy(from_logits, weights):
    members = [_member(s, logits=from_logits) for s in range(3)]
    x = _x()
    outs = [keras.ops.convert_to_numpy(m(x)) for m in members]
    probs = [_softmax(o) if from_logits else o for o in outs]
    w = np.ones(3) / 3 if weights is None else np.array(weights) / sum(weights)
    mean = sum(wi * p for wi, p in zip(w, probs))
    geo = np.exp(sum(wi * np.log(p) for wi, p in zip(w, probs)))
    geo /= geo.sum(-1, keepdims=True)
    vote = sum(wi * np.eye(3)[p.argmax(-1)] for wi, p in zip(w, probs))
    for reduce, want in (("mean", mean), ("geometric_mean", geo), ("vote", vote)):
        ens = Ensemble(members, weights=weights, reduce=reduce, from_logits=from_logits)
        got = keras.ops.convert_to_numpy(ens(x))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("reduce", ["mean", "geometric_mean", "vote"])
def test_save_load_as_one_model(tmp_path, reduce):
    ens = Ensemble([_member(0), _member(1)], weights=[2, 1], reduce=reduce)
    x = _x()
    want = ens.predict(x, verbose=0)
    path = tmp_path / "ens.keras"
    ens.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Ensemble)
    assert loaded.reduce == reduce and loaded.member_weights == [2.0, 1.0]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)


def test_compile_evaluate_and_jit():
    ens = Ensemble([_member(0), _member(1)])
    ens.compile(
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    x, y = toolkit.classification_data(32, 8, 3)
    loss, acc = ens.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0 <= acc <= 1


def test_from_snapshots(tmp_path):
    members = [_member(s) for s in range(3)]
    for i, m in enumerate(members):
        m.save_weights(str(tmp_path / f"snapshot_{i:03d}.weights.h5"))
    (tmp_path / "other.txt").write_text("ignored")
    assert len(snapshot_paths(tmp_path)) == 3
    ens = Ensemble.from_snapshots(tmp_path, lambda: _member(99), last=2)
    x = _x()
    want = Ensemble(members[1:]).predict(x, verbose=0)
    np.testing.assert_allclose(ens.predict(x, verbose=0), want, rtol=1e-6)
    with pytest.raises(ValueError, match="No snapshot"):
        Ensemble.from_snapshots(tmp_path / "empty", lambda: _member(0))


def test_bagging_trains_on_bootstrap_samples():
    x, y = toolkit.classification_data(96, 8, 3)

    def build():
        m = _member(0)
        m.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
        return m

    ens = bagging(build, x, y, n_models=3, epochs=5, batch_size=16, verbose=0)
    assert len(ens.members) == 3
    # Different resamples -> different members.
    w = [m.get_weights()[0] for m in ens.members]
    assert not np.allclose(w[0], w[1])
    # About 1/e of the examples are out of bag for each member.
    frac = np.mean([len(o) / len(y) for o in ens.oob_indices])
    assert 0.25 < frac < 0.5
    acc = np.mean(ens.predict(x, verbose=0).argmax(-1) == y)
    assert acc > 0.8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"models": []}, "models"),
        ({"weights": [1.0]}, "weights"),
        ({"weights": [-1.0, 2.0]}, "weights"),
        ({"reduce": "max"}, "reduce"),
    ],
)
def test_bad_arguments(kwargs, name):
    kwargs.setdefault("models", [_member(0), _member(1)])
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        Ensemble(**kwargs)
    with pytest.raises(ValueError, match="argument `n_models`"):
        bagging(lambda: _member(0), _x(), np.zeros(10), n_models=0)


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    strategy = mirrored_strategy()
    x, y = toolkit.classification_data(32, 8, 3)
    with strategy.scope():
        ens = Ensemble([_member(0), _member(1)])
        ens.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    h = ens.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_input_shape_is_the_members_so_tta_wraps_an_ensemble():
    import kerasreg

    members = [
        keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.Flatten(),
                keras.layers.Dense(4, activation="softmax"),
            ]
        )
        for _ in range(2)
    ]
    ensemble = kerasreg.ensembles.Ensemble(members)
    assert ensemble.input_shape == (None, 8, 8, 3)
    tta = kerasreg.TestTimeAugmentation(ensemble, crops="five", padding=2)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype("float32")
    assert tta.predict(x, verbose=0).shape == (3, 4)
