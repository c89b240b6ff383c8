"""The probability reduction shared by `Ensemble` and `TestTimeAugmentation`."""

import keras
import numpy as np
import pytest

from kerasreg import _reduce
from kerasreg.ensembles import Ensemble


def test_one_reduction_for_ensembles_and_views():
    probs = np.array(
        [[[0.7, 0.2, 0.1]], [[0.1, 0.6, 0.3]], [[0.6, 0.0, 0.4]]], "float32"
    )
    got = {
        r: keras.ops.convert_to_numpy(_reduce.reduce_probabilities(probs, r))
        for r in _reduce.REDUCTIONS
    }
    np.testing.assert_allclose(got["mean"], probs.mean(0), rtol=1e-6)
    np.testing.assert_allclose(got["vote"], [[2 / 3, 1 / 3, 0.0]], rtol=1e-6)
    top = probs.max(0)
    np.testing.assert_allclose(got["max"], top / top.sum(-1), rtol=1e-6)
    # A zero probability is clipped at EPSILON, not sent to log(0) = -inf.
    logs = np.log(np.clip(probs, _reduce.EPSILON, 1.0)).mean(0)
    geo = np.exp(logs) / np.exp(logs).sum(-1)
    np.testing.assert_allclose(got["geometric_mean"], geo, rtol=1e-5)
    assert np.isfinite(got["geometric_mean"]).all()


def test_logits_and_weights():
    logits = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    w = [0.5, 0.25, 0.25]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    got = _reduce.reduce_probabilities(logits, "mean", w, from_logits=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), np.tensordot(w, p, 1), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="max"):
        _reduce.reduce_probabilities(p, "max", w)
    with pytest.raises(ValueError, match="`reduce`"):
        _reduce.reduce_probabilities(p, "median")


def test_ensemble_takes_every_reduction_but_max():
    member = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, "softmax")])
    for reduce in _reduce.REDUCTIONS:
        if reduce == "max":
            with pytest.raises(ValueError, match="`reduce`"):
                Ensemble([member], reduce=reduce)
        else:
            assert Ensemble([member], reduce=reduce).reduce == reduce
