"""Looking at a search: a table of every trial and a stage-by-stage scatter."""

from __future__ import annotations

import math
import os
from typing import Any

from keras_tuner.engine.trial import TrialStatus

from kerasreg import _figures
from kerasreg.tuners.coarse_to_fine import (
    EPOCHS_KEY,
    EXPLODED_METRIC,
    STAGE_KEY,
    CoarseToFineOracle,
)


def _oracle(tuner_or_oracle: Any):
    oracle = getattr(tuner_or_oracle, "oracle", tuner_or_oracle)
    if not hasattr(oracle, "trials") or not hasattr(oracle, "objective"):
        raise ValueError(
            "Invalid value received for argument `tuner`. Expected a keras-tuner "
            "Tuner or Oracle that holds the trials (the chief's, not a "
            f"worker's). Received: tuner={tuner_or_oracle!r}"
        )
    return oracle


def _stage(oracle, trial) -> int | None:
    if isinstance(oracle, CoarseToFineOracle):
        try:
            return oracle.stage_of(trial.trial_id)
        except KeyError:
            pass
    return trial.hyperparameters.values.get(STAGE_KEY)


def _epochs(oracle, trial) -> int | None:
    if isinstance(oracle, CoarseToFineOracle):
        try:
            return oracle.budget_of(trial.trial_id)["epochs"]
        except KeyError:
            pass
    return trial.hyperparameters.values.get(EPOCHS_KEY)


def _exploded(trial) -> bool:
    return trial.metrics.exists(EXPLODED_METRIC)


class SearchTable(list):
    """A list of row dicts (best trial first) that prints as a text table."""

    def columns(self) -> list[str]:
        names = []
        for row in self:
            for key in row:
                if key not in names:
                    names.append(key)
        return names

    def __str__(self) -> str:
        columns = self.columns()
        cells = [[_cell(row.get(c)) for c in columns] for row in self]
        widths = [
            max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)
        ]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(columns, widths)),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def search_table(tuner: Any) -> SearchTable:
    """Every trial of a search as a row, best first.

    Each row holds `trial_id`, `stage` and `epochs` (for a
    `CoarseToFineSearch`), `status`, `score` (the objective; `-inf`/`inf` for
    an exploding trial), `exploded`, then every hyper-parameter value.
    Completed trials come first, best score first; then failed or unfinished
    ones. Works with any keras-tuner tuner or oracle.

    Args:
        tuner: A keras-tuner `Tuner` (or its `Oracle`).

    Returns:
        A `SearchTable`: a list of dicts; `print` it for a text table, or pass
        it to `pandas.DataFrame`.

    Example:

    >>> print(search_table(tuner))  # doctest: +SKIP
    trial_id  stage  epochs  status     score   exploded  learning_rate  l2
    --------  -----  ------  ---------  ------  --------  -------------  -------
    34        2      10      COMPLETED  0.5312  False     0.0009913      0.00215
    """
    oracle = _oracle(tuner)
    direction = oracle.objective.direction

    def key(trial):
        score = trial.score
        if trial.status != TrialStatus.COMPLETED or score is None or math.isnan(score):
            return (1, 0.0)
        return (0, -score if direction == "max" else score)

    rows = SearchTable()
    for trial in sorted(oracle.trials.values(), key=key):
        values = trial.hyperparameters.values
        row = {"trial_id": trial.trial_id}
        stage = _stage(oracle, trial)
        if stage is not None:
            row["stage"] = stage
            row["epochs"] = _epochs(oracle, trial)
        row["status"] = trial.status
        row["score"] = trial.score
        row["exploded"] = _exploded(trial)
        for name, value in values.items():
            if not name.startswith("tuner/"):
                row[name] = value
        rows.append(row)
    return rows


def _sampling(oracle, name: str) -> str | None:
    for hp in oracle.hyperparameters.space:
        if hp.name == name:
            return getattr(hp, "sampling", None)
    return None


def plot_search(
    tuner: Any,
    x: str = "learning_rate",
    y: str = "l2",
    color: str | None = None,
    *,
    path: str | os.PathLike | None = None,
    figsize: tuple[float, float] | None = None,
):
    """Scatter of the trials in the (`x`, `y`) plane coloured by score, per stage.

    One panel per stage of a `CoarseToFineSearch` (one panel for any other
    tuner): the stage's trials coloured by `color` on a colour scale shared
    by all panels, the trials of earlier stages in light grey, and the
    stage's searched range as a dashed box. Axes are logarithmic for
    hyper-parameters declared with `sampling="log"`, so log-sampled ranges
    show as the log-log plot they were searched in. Exploding trials and
    trials without a score are grey crosses.

    Needs matplotlib (`pip install kerasreg[examples]`), imported only here.

    Args:
        tuner: A keras-tuner `Tuner` (or its `Oracle`).
        x: Hyper-parameter on the horizontal axis. Defaults to
            `"learning_rate"`.
        y: Hyper-parameter on the vertical axis. Defaults to `"l2"`.
        color: Metric that colours the points (e.g. `"val_accuracy"`); the
            trial's best value of it. Defaults to `None`: the objective.
        path: Where to save the figure (format from the suffix), written
            atomically. Defaults to `None` (not saved).
        figsize: Figure size in inches. Defaults to `None` (4 x 3.6 per panel).

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> fig = plot_search(tuner, "learning_rate", "l2", "val_accuracy",
    ...                   path="search.png")  # doctest: +SKIP
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError as error:
        raise ImportError(
            "plot_search needs matplotlib: `pip install kerasreg[examples]` "
            "(or `pip install matplotlib`)."
        ) from error

    oracle = _oracle(tuner)
    names = set()
    for trial in oracle.trials.values():
        names.update(trial.hyperparameters.values)
    for arg, name in (("x", x), ("y", y)):
        if name not in names:
            raise ValueError(
                f"Invalid value received for argument `{arg}`. Expected the name "
                f"of a hyper-parameter of the search, one of "
                f"{sorted(n for n in names if not n.startswith('tuner/'))}. "
                f"Received: {arg}={name!r}"
            )
    metric = color or oracle.objective.name

    def score(trial):
        if _exploded(trial) or trial.status != TrialStatus.COMPLETED:
            return math.nan
        if metric == oracle.objective.name:
            value = trial.score
        elif trial.metrics.exists(metric):
            value = trial.metrics.get_best_value(metric)
        else:
            value = None
        return math.nan if value is None else float(value)

    points = []
    for trial in oracle.trials.values():
        values = trial.hyperparameters.values
        if x in values and y in values:
            points.append(
                (_stage(oracle, trial) or 1, values[x], values[y], score(trial))
            )
    stages = (
        oracle.stage_ranges
        if isinstance(oracle, CoarseToFineOracle) and oracle.stage_ranges
        else [{"stage": 1, "ranges": {}, "epochs": None}]
    )
    finite = [p[3] for p in points if math.isfinite(p[3])]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    n = len(stages)
    fig, axes = plt.subplots(
        1,
        n,
        figsize=figsize or (4.0 * n + 1.0, 3.6),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    mappable = None
    for ax, info in zip(axes[0], stages):
        k = info["stage"]
        earlier = [p for p in points if p[0] < k]
        mine = [p for p in points if p[0] == k]
        if earlier:
            ax.scatter(
                [p[1] for p in earlier],
                [p[2] for p in earlier],
                s=12,
                color="0.85",
                label="earlier stages",
            )
        good = [p for p in mine if math.isfinite(p[3])]
        bad = [p for p in mine if not math.isfinite(p[3])]
        if good:
            mappable = ax.scatter(
                [p[1] for p in good],
                [p[2] for p in good],
                c=[p[3] for p in good],
                cmap="viridis",
                vmin=vmin,
                vmax=vmax,
                s=28,
                edgecolors="k",
                linewidths=0.3,
            )
        if bad:
            ax.scatter(
                [p[1] for p in bad],
                [p[2] for p in bad],
                marker="x",
                color="0.5",
                label="exploded / no score",
            )
        rx, ry = info["ranges"].get(x), info["ranges"].get(y)
        if rx and ry and rx["kind"] == ry["kind"] == "numeric":
            ax.add_patch(
                Rectangle(
                    (rx["min_value"], ry["min_value"]),
                    rx["max_value"] - rx["min_value"],
                    ry["max_value"] - ry["min_value"],
                    fill=False,
                    linestyle="--",
                    edgecolor="tab:red",
                )
            )
        if _sampling(oracle, x) == "log":
            ax.set_xscale("log")
        if _sampling(oracle, y) == "log":
            ax.set_yscale("log")
        epochs = f", {info['epochs']} epochs" if info.get("epochs") else ""
        ax.set_title(f"stage {k}: {len(mine)} trials{epochs}")
        ax.set_xlabel(x)
    axes[0][0].set_ylabel(y)
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes[0]), label=metric)
    if path is not None:
        _figures.save_figure(fig, path, dpi=120, bbox_inches="tight")
    return fig
