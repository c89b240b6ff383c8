import math

import pytest

import kerasreg
from kerasreg import utils


def test_version():
    assert (
        isinstance(kerasreg.__version__, str) and kerasreg.__version__.count(".") == 2
    )


@pytest.mark.parametrize(
    "value", [1.0, 1.5, -0.1, math.nan, math.inf, "0.5", True, None]
)
def test_check_rate_rejects(value):
    with pytest.raises(
        ValueError, match=r"Invalid value received for argument `rate`.*Received: rate="
    ):
        utils.check_rate("rate", value)


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 0.999])
def test_check_rate_accepts(value):
    assert utils.check_rate("rate", value) == float(value)


def test_check_int_and_choice_and_range():
    assert utils.check_int("rank", 3, 1) == 3
    with pytest.raises(ValueError, match="`rank`.*Received: rank=0"):
        utils.check_int("rank", 0, 1)
    with pytest.raises(ValueError, match="`rank`"):
        utils.check_int("rank", 2.0, 1)
    assert utils.check_choice("mask", "batch", ("batch", "example")) == "batch"
    with pytest.raises(ValueError, match="Received: mask='row'"):
        utils.check_choice("mask", "row", ("batch", "example"))
    assert utils.check_range("scale", (0.08, 1.0), 0.0, 1.0) == (0.08, 1.0)
    for bad in [(1.0, 0.5), (0.5,), "ab", (0.0, 2.0), (math.nan, 1.0)]:
        with pytest.raises(ValueError, match="`scale`"):
            utils.check_range("scale", bad, 0.0, 1.0)
    with pytest.raises(ValueError, match="min < max"):
        utils.check_range("scale", (0.5, 0.5), allow_equal=False)
    ratio = utils.check_range("ratio", (0.5, 2.0), 0.0, low_exclusive=True)
    assert ratio == (0.5, 2.0)
    with pytest.raises(ValueError, match="min > 0.*Received: ratio=\\(0.0, 2.0\\)"):
        utils.check_range("ratio", (0.0, 2.0), 0.0, low_exclusive=True)
