"""Bad input gets a clear error naming the argument, never a silent conversion.

Table-driven: one shared boolean, verbosity and seed check everywhere, and
the inputs the adversarial audit found accepted silently or with a confusing
message.
"""

import math

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import utils
from tests import toolkit

# -- one boolean check -----------------------------------------------------

BOOLEAN_ARGUMENTS = [
    (kerasreg.callbacks.EMAWeights, "ema_at_end"),
    (kerasreg.callbacks.EMAWeights, "swap_for_eval"),
    (kerasreg.callbacks.EMAWeights, "warmup"),
    (kerasreg.callbacks.EMAWeights, "average_non_trainable"),
    (kerasreg.callbacks.ExplosionDetector, "raise_error"),
    (kerasreg.callbacks.ExplosionDetector, "restore_weights"),
    (kerasreg.callbacks.SmoothedEarlyStopping, "restore_best_weights"),
    (lambda **kw: kerasreg.callbacks.SWA(start_epoch=1, **kw), "update_batch_norm"),
    (kerasreg.layers.InvertedDropout, "mc"),
]


@pytest.mark.parametrize("cls, name", BOOLEAN_ARGUMENTS)
@pytest.mark.parametrize("bad", ["False", "True", 0, 1, 1.0, None, [True]])
def test_booleans_are_refused_unless_boolean(cls, name, bad):
    with pytest.raises(
        ValueError, match=rf"argument `{name}`. Expected a boolean.*{name}="
    ):
        cls(**{name: bad})


@pytest.mark.parametrize("cls, name", BOOLEAN_ARGUMENTS)
def test_python_and_numpy_booleans_are_accepted(cls, name):
    for value in (True, False, np.bool_(True), np.bool_(False)):
        obj = cls(**{name: value})
        assert getattr(obj, name) is bool(value)  # stored as a Python bool


def test_boolean_arguments_of_wrappers():
    member = toolkit.tiny_model()
    with pytest.raises(ValueError, match="`from_logits`.*from_logits='False'"):
        kerasreg.ensembles.Ensemble([member], from_logits="False")
    images = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match="`from_logits`"):
        kerasreg.TestTimeAugmentation(images, from_logits=1)
    with pytest.raises(ValueError, match="`flips`"):
        kerasreg.TestTimeAugmentation(images, flips="yes")
    assert kerasreg.TestTimeAugmentation(images, flips=np.bool_(False)).flips is False
    with pytest.raises(ValueError, match="`use_bias`"):
        kerasreg.layers.LowRankDense(4, rank=2, use_bias="False")


# -- verbosity ---------------------------------------------------------------

VERBOSE_CALLBACKS = [
    kerasreg.callbacks.ExplosionDetector,
    kerasreg.callbacks.SmoothedEarlyStopping,
    lambda **kw: kerasreg.callbacks.SnapshotEnsemble(cycles=2, **kw),
]


@pytest.mark.parametrize("cls", VERBOSE_CALLBACKS)
def test_verbose(cls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cls(verbose="auto").verbose == 1
    assert cls(verbose=np.int64(2)).verbose == 2
    assert cls(verbose=False).verbose == 0
    for bad in (1.5, -1, "2", "loud", None):
        with pytest.raises(ValueError, match=r"argument `verbose`.*verbose="):
            cls(verbose=bad)


# -- one seed check ----------------------------------------------------------

SEEDED_LAYERS = [
    lambda seed: kerasreg.layers.InvertedDropout(0.5, seed=seed),
    lambda seed: kerasreg.layers.DropPath(0.2, seed=seed),
    lambda seed: kerasreg.layers.DropBlock2D(0.1, block_size=3, seed=seed),
    lambda seed: kerasreg.layers.DropConnectDense(4, rate=0.5, seed=seed),
    lambda seed: kerasreg.layers.DropConnectConv2D(4, 3, rate=0.5, seed=seed),
    lambda seed: kerasreg.layers.PCAColorAugmentation(seed=seed),
    lambda seed: kerasreg.layers.RandomPixelNoise(0.1, seed=seed),
    lambda seed: kerasreg.layers.RandomResizedCrop(8, 8, seed=seed),
    lambda seed: kerasreg.layers.RandomScaleCrop(8, 8, seed=seed),
    lambda seed: kerasreg.layers.AutoAugment("cifar10", seed=seed),
    lambda seed: kerasreg.augmentation.pipeline("natural", seed=seed),
]


@pytest.mark.parametrize("make", SEEDED_LAYERS)
@pytest.mark.parametrize("bad", [True, -1, 2**63, 2**32, 1.5, "0"])
def test_bad_seeds_are_refused_on_every_backend(make, bad):
    with pytest.raises(
        ValueError, match=r"argument `seed`. Expected None or an integer"
    ):
        make(bad)


@pytest.mark.parametrize("make", SEEDED_LAYERS)
def test_numpy_and_large_seeds_are_accepted(make):
    make(np.int64(7))
    make(2**32 - 1)
    make(None)


def test_check_seed_returns_python_ints():
    assert type(utils.check_seed("seed", np.int64(3))) is int
    assert utils.check_seed("seed", None) is None


# -- ensembles -----------------------------------------------------------------


def _member(classes=3):
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(classes, activation="softmax")]
    )


@pytest.mark.parametrize(
    "weights",
    [[math.nan, 1.0], [math.inf, 1.0], "12", [1.0, -1.0], [0.0, 0.0], [1.0], 3.0],
)
def test_ensemble_weights_are_checked(weights):
    with pytest.raises(ValueError, match=r"argument `weights`.*weights="):
        kerasreg.ensembles.Ensemble([_member(), _member()], weights=weights)


def test_ensemble_members_must_agree_on_classes():
    with pytest.raises(ValueError, match=r"same number of classes.*\[3, 4\]"):
        kerasreg.ensembles.Ensemble([_member(3), _member(4)])


def test_ensemble_of_one_model_says_to_pass_a_list():
    with pytest.raises(ValueError, match=r"argument `models`.*pass \[model\]"):
        kerasreg.ensembles.Ensemble(_member())


def test_bagging_refuses_mismatched_lengths():
    x, y = toolkit.classification_data(32, 4, 3)
    with pytest.raises(ValueError, match=r"`x` and `y`.*30 inputs and 32 targets"):
        kerasreg.ensembles.bagging(_member, x[:30], y, n_models=2, epochs=1, verbose=0)


# -- test-time augmentation ------------------------------------------------------


def test_tta_checks_the_image_size_at_every_call():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    tta = kerasreg.TestTimeAugmentation(model, crops="center", flips=True)
    assert tta(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 2)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 8, 8, C\)"):
        tta(np.zeros((2, 10, 10, 3), "float32"))
    with pytest.raises(ValueError, match=r"expects images of shape"):
        tta(np.zeros((8, 8, 3), "float32"))


# -- low-rank factorization and PCA colour ------------------------------------------


def test_from_dense_refuses_a_nan_kernel():
    dense = keras.layers.Dense(4)
    dense.build((None, 6))
    kernel = np.ones((6, 4), "float32")
    kernel[0, 0] = np.nan
    dense.kernel.assign(kernel)
    with pytest.raises(ValueError, match=r"finite kernel.*1 NaN/inf values"):
        kerasreg.layers.LowRankDense.from_dense(dense, rank=2)


def test_from_dense_refuses_a_quantized_dense():
    dense = keras.layers.Dense(8)
    dense.build((None, 16))
    dense.quantize("int8")
    with pytest.raises(ValueError, match=r"float `keras.layers.Dense`.*'int8'"):
        kerasreg.layers.LowRankDense.from_dense(dense, rank=2)


def test_pca_adapt_refuses_nan_images():
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3))
    images[1, 2, 3, 0] = np.nan
    layer = kerasreg.layers.PCAColorAugmentation()
    with pytest.raises(ValueError, match=r"finite pixel values.*1 NaN/inf"):
        layer.adapt(images)


# -- sanity check ----------------------------------------------------------------


class _NaNOutput(keras.layers.Layer):
    def call(self, x):
        return x * np.float32("nan")


def test_sanity_check_on_nan_outputs_does_not_blame_logits():
    x, y = toolkit.classification_data(32, 8, 3)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(3, activation="softmax"),
            _NaNOutput(),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    report = kerasreg.diagnostics.sanity_check(
        model, x, y, tiny=6, epochs=2, learning_rates=None
    )
    hint = report["initial loss"].hint
    assert "NaN or inf" in hint and "logits" not in hint


@pytest.mark.parametrize("bad", [None, "", 3, b"snapshots"])
def test_snapshot_directory_must_be_a_path(bad):
    with pytest.raises(ValueError, match=r"argument `directory`.*directory="):
        kerasreg.callbacks.SnapshotEnsemble(cycles=2, directory=bad)


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_drop_connect_dense_passes_an_empty_batch(mask):
    layer = kerasreg.layers.DropConnectDense(4, rate=0.5, mask=mask, seed=0)
    for shape in [(0, 3), (0, 5, 3), (2, 5, 3)]:
        out = layer(np.zeros(shape, "float32"), training=True)
        assert tuple(out.shape) == (*shape[:-1], 4)
