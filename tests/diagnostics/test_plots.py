"""Tests of kerasreg.diagnostics.plot_history and smooth."""

import os
import subprocess
import sys

import numpy as np
import pytest

from kerasreg.diagnostics import plot_history, smooth

pytest.importorskip("matplotlib")


def _history(epochs=30, seed=0):
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    loss = 2.0 * np.exp(-e / 8) + 0.05 * rng.normal(size=epochs)
    val_loss = 2.0 * np.exp(-e / 10) + 0.02 * e + 0.05 * rng.normal(size=epochs)
    return {
        "loss": list(loss),
        "val_loss": list(val_loss),
        "accuracy": list(1 - loss / 2.5),
        "val_accuracy": list(1 - val_loss / 2.5),
    }


def test_smooth():
    values = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(smooth(values, 0.0), values)
    out = smooth(values, 0.5)
    assert out[0] == pytest.approx(1.0)  # Debiased: no pull towards 0.
    assert out[1] == pytest.approx((0.25 * 1 + 0.5 * 2) / 0.75)
    assert np.all(np.diff(out) > 0) and np.all(out[1:] < values[1:])
    with_nan = smooth([1.0, float("nan"), 3.0], 0.5)
    assert np.isnan(with_nan[1]) and np.isfinite(with_nan[2])
    with pytest.raises(ValueError, match="smoothing"):
        smooth(values, 1.0)


def test_plot_history_panels_and_gap(tmp_path):
    history = _history()
    fig = plot_history(history, smoothing=0.6, title="run")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    loss_ax = axes[0]
    # Raw and smoothed lines for train and validation.
    assert len(loss_ax.lines) == 4
    raw = loss_ax.lines[0].get_ydata()
    np.testing.assert_allclose(raw, history["loss"])
    np.testing.assert_allclose(
        loss_ax.lines[1].get_ydata(), smooth(history["loss"], 0.6)
    )
    # The gap is shaded between the smoothed curves.
    assert len(loss_ax.collections) == 1
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert labels == ["train", "validation", "generalization gap"]


def test_plot_history_saves_png_atomically(tmp_path):
    path = tmp_path / "sub" / "curves.png"
    plot_history(_history(), path=path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(path.parent) == ["curves.png"]  # No temporary file left.


def test_plot_history_keras_history_and_errors():
    class FakeHistory:
        history = {"loss": [1.0, 0.5], "mae": [0.3, 0.2]}

    fig = plot_history(FakeHistory())
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "loss"
    fig = plot_history(FakeHistory(), metrics=["mae"])
    assert len(fig.axes[0].collections) == 0  # No validation: no gap.
    with pytest.raises(ValueError, match="not found"):
        plot_history(FakeHistory(), metrics=["accuracy"])
    with pytest.raises(ValueError, match="History"):
        plot_history([1, 2, 3])


def test_matplotlib_is_imported_lazily():
    # `import keras` may import matplotlib itself, so block it instead: the
    # diagnostics still import, and only plotting needs it.
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("matplotlib blocked")
sys.meta_path.insert(0, Block())
import kerasreg, kerasreg.diagnostics, kerasreg.transfer
try:
    kerasreg.diagnostics.plot_history({"loss": [1.0, 0.5]})
except ImportError as e:
    print("plot needs", e)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "plot needs matplotlib blocked"
