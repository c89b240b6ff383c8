import sys

import pytest


def test_missing_keras_tuner_names_the_extra(monkeypatch):
    # (That `import kerasreg` alone does not import keras-tuner is checked in
    # fresh processes by the distributed test in test_coarse_to_fine.py.)
    for name in list(sys.modules):
        if name == "kerasreg.tuners" or name.startswith("kerasreg.tuners."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # As if not installed.
    with pytest.raises(ImportError, match=r"pip install kerasreg\[tuner\]"):
        import kerasreg.tuners  # noqa: F401


def test_public_api():
    import kerasreg.tuners as tuners

    for name in (
        "CoarseToFineOracle",
        "CoarseToFineSearch",
        "RegularizationHyperModel",
        "plot_search",
        "search_table",
    ):
        assert hasattr(tuners, name)
