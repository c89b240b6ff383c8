"""Direct tests of the monitor / mode / min_delta helper the callbacks share."""

import copy
import math
import warnings

import pytest

from kerasreg.callbacks._monitor import Monitor, is_finite, resolve_mode

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    "monitor, mode, expected",
    [
        ("val_loss", "auto", "min"),
        ("loss", "auto", "min"),
        ("val_mae", "auto", "min"),
        ("val_accuracy", "auto", "max"),
        ("sparse_categorical_accuracy", "auto", "max"),
        ("val_AUC", "auto", "max"),
        ("precision", "auto", "max"),
        ("val_recall", "auto", "max"),
        ("f1_score", "auto", "max"),
        ("mean_iou", "auto", "max"),
        ("top_k_categorical_accuracy", "auto", "max"),
        ("val_loss", "max", "max"),
        ("val_accuracy", "min", "min"),
    ],
)
def test_resolve_mode(monitor, mode, expected):
    assert resolve_mode(monitor, mode) == expected
    assert Monitor(monitor, mode).mode == expected


@pytest.mark.parametrize(
    "value, expected",
    [(1.0, True), (0, True), ("2.5", True), (NAN, False), (INF, False),
     (-INF, False), (None, False), ("loss", False)],
)  # fmt: skip
def test_is_finite(value, expected):
    assert is_finite(value) is expected


@pytest.mark.parametrize(
    "mode, min_delta, current, reference, expected",
    [
        ("min", 0.0, 0.9, 1.0, True),
        ("min", 0.0, 1.0, 1.0, False),  # equal is no improvement
        ("min", 0.1, 0.95, 1.0, False),  # within min_delta
        ("min", 0.1, 0.85, 1.0, True),
        ("min", -0.1, 0.85, 1.0, True),  # min_delta's sign does not matter
        ("max", 0.0, 1.1, 1.0, True),
        ("max", 0.1, 1.05, 1.0, False),
        ("min", 0.0, NAN, 1.0, False),  # NaN / inf never improve
        ("min", 0.0, -INF, 1.0, False),
        ("max", 0.0, INF, 1.0, False),
        ("min", 0.0, 5.0, INF, True),  # everything finite beats `worst`
        ("max", 0.0, -5.0, -INF, True),
    ],
)
def test_improved(mode, min_delta, current, reference, expected):
    assert Monitor("m", mode, min_delta).improved(current, reference) is expected


def test_better_ignores_min_delta_and_prefers_finite():
    m = Monitor("val_loss", "min", min_delta=1.0)
    assert m.better(0.9, 1.0) and not m.better(1.0, 0.9)
    assert m.better(5.0, NAN) and not m.better(NAN, 5.0)
    assert Monitor("val_accuracy").better(0.8, 0.7)


def test_worst():
    assert Monitor("val_loss").worst == INF
    assert Monitor("val_accuracy").worst == -INF


def test_get_reads_the_value_and_warns_once_when_missing():
    m = Monitor("val_loss")
    assert m.get({"val_loss": 0.5, "loss": 0.4}) == 0.5
    assert isinstance(m.get({"val_loss": 1}), float)
    with pytest.warns(UserWarning, match=r"Available metrics are: accuracy, loss"):
        assert m.get({"loss": 0.4, "accuracy": 0.5}, "MyCallback") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second miss stays silent
        assert m.get({"loss": 0.4}) is None
    m.reset()  # on_train_begin: a new fit warns again
    with pytest.warns(UserWarning, match=r"MyCallback: .*`val_loss`.*\(none\)"):
        assert m.get(None, "MyCallback") is None


def test_deepcopy_keeps_the_arguments():
    m = Monitor("val_accuracy", "auto", 0.01)
    clone = copy.deepcopy(m)
    assert (clone.monitor, clone.mode, clone.min_delta) == ("val_accuracy", "max", 0.01)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"monitor": ""}, "monitor"),
        ({"monitor": 3}, "monitor"),
        ({"mode": "lowest"}, "mode"),
        ({"min_delta": "x"}, "min_delta"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        Monitor(**kwargs)
