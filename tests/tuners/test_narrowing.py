import math
import random

import keras_tuner
import numpy as np
import pytest

from kerasreg.tuners import narrowing


def _hp(kind, *args, **kwargs):
    hp = keras_tuner.HyperParameters()
    getattr(hp, kind)(*args, **kwargs)
    return hp.space[0]


def test_full_range_of_each_kind():
    lr = narrowing.full_range(_hp("Float", "lr", 1e-6, 1e-1, sampling="log"))
    assert lr["low"] == 0.0 and lr["high"] == 1.0
    assert lr["min_value"] == pytest.approx(1e-6)
    assert lr["max_value"] == pytest.approx(1e-1)
    units = narrowing.full_range(_hp("Int", "units", 8, 64, step=8))
    assert (units["min_value"], units["max_value"]) == (8, 64)
    act = narrowing.full_range(_hp("Choice", "act", ["relu", "tanh"]))
    assert act == {"kind": "choice", "values": ["relu", "tanh"]}
    assert narrowing.full_range(_hp("Boolean", "ema"))["values"] == [True, False]
    assert narrowing.full_range(_hp("Fixed", "depth", 3)) is None


def test_narrow_log_float_to_span_plus_margin_in_decades():
    hp = _hp("Float", "lr", 1e-6, 1e-1, sampling="log")  # 5 decades.
    prev = narrowing.full_range(hp)
    r = narrowing.narrow_numeric(hp, [1e-4, 1e-3], prev, margin=0.1)
    # Span 1e-4..1e-3, widened by 0.1 x 5 = 0.5 decade on each side.
    assert math.log10(r["min_value"]) == pytest.approx(-4.5)
    assert math.log10(r["max_value"]) == pytest.approx(-2.5)
    # The next stage widens by 0.1 x 2 decades: finer and finer.
    r2 = narrowing.narrow_numeric(hp, [3e-4], r, margin=0.1)
    assert math.log10(r2["max_value"]) - math.log10(r2["min_value"]) == pytest.approx(
        0.4
    )
    # Clipped to the declared bounds.
    r3 = narrowing.narrow_numeric(hp, [2e-6, 1e-1], prev, margin=0.5)
    assert (r3["low"], r3["high"]) == (0.0, 1.0)


def test_narrow_linear_and_stepped_int_keep_whole_grid_cells():
    hp = _hp("Float", "rate", 0.0, 0.8)
    r = narrowing.narrow_numeric(hp, [0.2, 0.4], narrowing.full_range(hp), 0.0)
    assert (r["min_value"], r["max_value"]) == pytest.approx((0.2, 0.4))
    units = _hp("Int", "units", 8, 64, step=8)  # 8 grid points.
    r = narrowing.narrow_numeric(units, [32], narrowing.full_range(units), 0.0)
    assert (r["min_value"], r["max_value"]) == (32, 32)
    draws = {narrowing.sample(units, r, random.Random(i)) for i in range(50)}
    assert draws == {32}
    r = narrowing.narrow_numeric(units, [16, 40], narrowing.full_range(units), 0.0)
    draws = {narrowing.sample(units, r, random.Random(i)) for i in range(300)}
    assert draws == {16, 24, 32, 40}


def test_narrow_choice_keeps_seen_values_in_declared_order():
    hp = _hp("Choice", "act", ["relu", "tanh", "elu", "gelu"])
    assert narrowing.narrow_choice(hp, ["elu", "relu", "elu"])["values"] == [
        "relu",
        "elu",
    ]
    flag = _hp("Boolean", "ema")
    assert narrowing.narrow_choice(flag, [False])["values"] == [False]


@pytest.mark.parametrize("narrowed", [False, True])
def test_sample_is_log_uniform(narrowed):
    hp = _hp("Float", "lr", 1e-6, 1e-1, sampling="log")
    r = narrowing.full_range(hp)
    if narrowed:
        r = narrowing.narrow_numeric(hp, [1e-4, 1e-3], r, margin=0.1)
    rng = random.Random(0)
    x = np.log10([narrowing.sample(hp, r, rng) for _ in range(4000)])
    lo, hi = math.log10(r["min_value"]), math.log10(r["max_value"])
    u = (x - lo) / (hi - lo)
    assert u.min() >= 0.0 and u.max() <= 1.0 + 1e-12
    counts, _ = np.histogram(u, bins=10, range=(0, 1))
    chi2 = float(np.sum((counts - 400.0) ** 2 / 400.0))
    assert chi2 < 27.9  # 9 degrees of freedom, 0.1% critical value.
    # Deciles of log10(value) are evenly spaced (a linear-uniform sampler
    # would put 90% of the draws in the top decade).
    np.testing.assert_allclose(
        np.quantile(u, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.03
    )


def test_format_range():
    hp = _hp("Float", "lr", 1e-6, 1e-1, sampling="log")
    assert narrowing.format_range(narrowing.full_range(hp)) == "[1e-06, 0.1] (log)"
    assert narrowing.format_range({"kind": "choice", "values": ["a"]}) == "{'a'}"


def test_latin_hypercube_puts_one_point_in_every_stratum():
    design = narrowing.latin_hypercube(["a", "b"], 12, random.Random(0))
    assert sorted(design) == ["a", "b"]
    for quantiles in design.values():
        assert len(quantiles) == 12
        assert sorted(int(u * 12) for u in quantiles) == list(range(12))
    # Independent orders: the pairs are not the diagonal.
    assert [int(u * 12) for u in design["a"]] != [int(u * 12) for u in design["b"]]
    again = narrowing.latin_hypercube(["a", "b"], 12, random.Random(0))
    assert again == design


def test_value_at_maps_quantiles_into_the_range():
    lr = _hp("Float", "lr", 1e-6, 1e-1, sampling="log")
    full = narrowing.full_range(lr)
    assert narrowing.value_at(lr, full, 0.0) == pytest.approx(1e-6)
    assert narrowing.value_at(lr, full, 0.5) == pytest.approx(10**-3.5)
    act = _hp("Choice", "act", ["relu", "tanh", "elu"])
    kept = narrowing.narrow_choice(act, ["tanh", "elu"])
    assert [narrowing.value_at(act, kept, u) for u in (0.0, 0.49, 0.5, 0.999)] == [
        "tanh",
        "tanh",
        "elu",
        "elu",
    ]
