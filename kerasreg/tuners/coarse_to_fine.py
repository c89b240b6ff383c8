"""Coarse-to-fine random search: a keras-tuner Oracle and its thin Tuner.

Stage 1 samples the declared space (log-uniform where
`hp.Float(..., sampling="log")`, stratified as a Latin hypercube) with a short
training budget; each later stage narrows every range to the region of the
best trials so far and samples again with a longer budget. The strategy lives
in `CoarseToFineOracle` (keras-tuner's design: a new strategy is a new
`Oracle` implementing `populate_space`); `CoarseToFineSearch` only builds it,
passes each stage's epochs to `fit` and scores exploding trials.
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import keras_tuner
from keras_tuner.engine.hyperparameters import HyperParameters
from keras_tuner.engine.trial import TrialStatus

from kerasreg import utils
from kerasreg.tuners import narrowing

STAGE_KEY = "tuner/stage"
EPOCHS_KEY = "tuner/epochs"
EXPLODED_METRIC = "exploded"
#: The objective at a trial's last epoch, which `CoarseToFineSearch` reports
#: beside its best epoch's metrics (what `rank_by="last"` ranks by).
LAST_METRIC = "objective_at_last_epoch"

DEFAULT_STAGES = ({"trials": 30, "epochs": 5}, {"trials": 20, "epochs": 10})
DESIGNS = ("latin_hypercube", "random")
RANKINGS = ("best", "last")

# HyperParameters of a running trial -> its {"stage", "epochs"} (search
# bookkeeping taken out of the values by `CoarseToFineSearch`).
_BUDGETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def trial_stage(hp) -> int | None:
    """The stage (1-based) of the trial whose hyper-parameters are `hp`.

    For use in a hypermodel's `build(hp)` / `fit(hp, ...)` or a tuner's
    `run_trial` under `CoarseToFineSearch`; None elsewhere.
    """
    budget = _BUDGETS.get(hp)
    if budget is not None:
        return budget["stage"]
    return hp.values.get(STAGE_KEY)


def trial_epochs(hp, default: int | None = None) -> int | None:
    """The number of epochs the trial whose hyper-parameters are `hp` trains.

    Under `CoarseToFineSearch`, its stage's `"epochs"` (`default` for a stage
    without epochs, which keeps the `epochs` given to `search`); with
    keras-tuner's `Hyperband`, its `"tuner/epochs"`; else `default`. For
    use in a hypermodel's `build(hp)` (e.g. a learning-rate schedule that
    spans the trial) or `fit(hp, ...)`.

    Example:

    >>> import keras_tuner
    >>> trial_epochs(keras_tuner.HyperParameters(), default=10)
    10
    """
    budget = _BUDGETS.get(hp)
    epochs = budget["epochs"] if budget is not None else hp.values.get(EPOCHS_KEY)
    return default if epochs is None else int(epochs)


def _take_bookkeeping(hp) -> dict:
    """Pops the search's bookkeeping out of `hp.values`."""
    return {
        "stage": hp.values.pop(STAGE_KEY, None),
        "epochs": hp.values.pop(EPOCHS_KEY, None),
    }


def _check_stages(stages: Any) -> list[dict]:
    expected = (
        'a non-empty list of dicts like {"trials": 30, "epochs": 5} '
        '("trials" an integer >= 1, optional "epochs" an integer >= 1)'
    )
    if isinstance(stages, dict) or not isinstance(stages, Sequence) or not stages:
        raise utils.invalid_value("stages", expected, stages)
    checked = []
    for stage in stages:
        if not isinstance(stage, dict) or "trials" not in stage:
            raise utils.invalid_value("stages", expected, stages)
        unknown = set(stage) - {"trials", "epochs"}
        if unknown:
            raise utils.invalid_value(
                "stages", expected + f"; unknown keys {sorted(unknown)}", stages
            )
        ok_trials = _is_pos_int(stage["trials"])
        epochs = stage.get("epochs")
        if not ok_trials or (epochs is not None and not _is_pos_int(epochs)):
            raise utils.invalid_value("stages", expected, stages)
        checked.append(
            {
                "trials": int(stage["trials"]),
                "epochs": None if epochs is None else int(epochs),
            }
        )
    return checked


def _is_pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class CoarseToFineOracle(keras_tuner.Oracle):
    """Staged random search that narrows the space to the best trials.

    Stage 1 draws `stages[0]["trials"]` configurations from the declared
    space (log-uniform for `sampling="log"`, like `RandomSearch`). With
    `design="latin_hypercube"` (the default) the draws of a stage are
    stratified: for every hyper-parameter, its range (in sampling space) is
    cut into as many equal strata as the stage has trials and each stratum
    gets exactly one trial, paired at random across hyper-parameters. A
    short stage then covers every decade of a log range evenly instead of
    leaving gaps where independent draws happen to cluster (Bergstra and
    Bengio's argument for low-discrepancy designs over plain random search).
    `design="random"` draws every value independently. With `promote=n`,
    each later stage first re-runs the `n` best configurations so far with
    its own (longer) budget, then draws the rest of its trials: the best
    region's best point is always measured at full length, and first (the
    short runs of a coarse stage rank configurations only roughly). Before each
    later stage the oracle waits until every trial of the stages before has
    ended (workers are told to wait, status `"IDLE"`, in the meantime), takes
    the `top_k` best completed trials so far, and narrows each hyper-parameter:

    - `Float`/`Int`: to the span of the top trials' values in the sampling
      space (decades for log sampling), widened on each side by `margin` times
      the width of the previous stage's range, within the declared bounds;
    - `Choice`/`Boolean`: to the values the top trials used.

    Hyper-parameters that no top trial used (inactive conditional ones) keep
    their previous range; exploding trials (scored +-inf) never count as top
    trials. The oracle alone decides which stage a trial belongs to and keeps
    the stage, the stage of every trial (`stage_of`) and the ranges of every
    stage in its saved state, so a search resumed with `overwrite=False` goes
    on in the same stage, and a distributed search (one chief oracle, many
    workers) respects every stage boundary. If a stage's narrowed space runs
    out of new values (small discrete spaces), the stage ends early.

    The stage and its epochs travel to the tuner (possibly a worker) in the
    new trial's values, as `"tuner/stage"` and `"tuner/epochs"` (the only
    part of a trial keras-tuner sends to workers; `Hyperband` does the same
    with `"tuner/epochs"`). They are search bookkeeping, not hyper-parameters:
    `CoarseToFineSearch` takes them out of the values before the hypermodel
    sees them (read them with `trial_stage(hp)` / `trial_epochs(hp)`), and the
    oracle takes them out of every trial it ends, so the recorded trials,
    `get_best_hyperparameters()` and the summaries hold only the searched
    hyper-parameters (`build(**best_hp.values)` works).

    Args:
        objective: A string, `keras_tuner.Objective` or list of them: what to
            optimise (as in every keras-tuner oracle). Defaults to `None`.
        stages: List of dicts, one per stage: `"trials"` (integer >= 1) and
            optionally `"epochs"` (integer >= 1; passed to `fit` by
            `CoarseToFineSearch`, which otherwise keeps the `epochs` given to
            `search`). Defaults to
            `[{"trials": 30, "epochs": 5}, {"trials": 20, "epochs": 10}]`.
        top_k: How many best trials define the next stage's ranges, at most
            the first stage's trials. Defaults to `5`.
        margin: Widening of each narrowed numeric range, on each side, as a
            fraction of the previous stage's range width in sampling space
            (`0.1` of a 5-decade range is half a decade). Defaults to `0.1`.
        design: How a stage's trials are spread over its ranges:
            `"latin_hypercube"` (one trial per stratum of every
            hyper-parameter) or `"random"` (independent draws). Defaults to
            `"latin_hypercube"`.
        promote: How many of the best configurations so far each later
            stage re-runs first (with its own epochs), an integer in
            `[0, top_k]`, less than every later stage's trials. Defaults to
            `0`.
        rank_by: What ranks the trials that define (and are promoted to)
            the next stage: `"best"`, the trial's score (its best epoch, as
            keras-tuner scores every trial), or `"last"`, the objective at
            the trial's last epoch: where a short run was heading when its
            budget ran out, as successive halving ranks its runs. `"last"`
            passes over a short run whose one lucky epoch came before its
            curve fell (a learning rate too high to last a longer run).
            `"last"` reads the `LAST_METRIC` that `CoarseToFineSearch`
            reports for every trial (a multi-objective: its signed sum, as
            keras-tuner combines one); a trial without it (a custom
            `run_trial`'s own results) is ranked by its score, with a
            warning. Either way, a trial whose ranking value is not finite
            never counts. The reported best trial is always the best-scored
            one. Defaults to `"best"`.
        seed: Random seed. Searches with different seeds draw independent
            values (keras-tuner's own oracles draw value k with seed
            `seed + k`, so seeds 1 and 2 share all values but one). Defaults
            to `None`.
        hyperparameters: Optional `HyperParameters` to declare or override
            the space. Defaults to `None`.
        allow_new_entries: As in keras-tuner. Defaults to `True`.
        tune_new_entries: As in keras-tuner. Defaults to `True`.
        max_retries_per_trial: As in keras-tuner. Defaults to `0`.
        max_consecutive_failed_trials: As in keras-tuner; exploding trials
            that `CoarseToFineSearch` scores as the worst value are completed,
            not failed, and never count. Defaults to `3`.

    Example:

    >>> oracle = CoarseToFineOracle(
    ...     objective="val_accuracy",
    ...     stages=[{"trials": 20, "epochs": 2}, {"trials": 10, "epochs": 6}],
    ...     top_k=4,
    ... )
    >>> oracle.max_trials
    30

    Reference:
        Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
        JMLR 2012; CS231n, "Hyperparameter optimization" (coarse-to-fine
        search in log space); McKay, Beckman and Conover, "A Comparison of
        Three Methods for Selecting Values of Input Variables in the Analysis
        of Output from a Computer Code", Technometrics 1979 (Latin hypercube
        sampling).
    """

    def __init__(
        self,
        objective=None,
        stages: Sequence[dict] = DEFAULT_STAGES,
        top_k: int = 5,
        margin: float = 0.1,
        seed: int | None = None,
        hyperparameters=None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        design: str = "latin_hypercube",
        promote: int = 0,
        rank_by: str = "best",
    ):
        self.stages = _check_stages(stages)
        if rank_by not in RANKINGS:
            raise utils.invalid_value("rank_by", f"one of {list(RANKINGS)}", rank_by)
        self.rank_by = rank_by
        if design not in DESIGNS:
            raise utils.invalid_value("design", f"one of {list(DESIGNS)}", design)
        self.design = design
        self.top_k = utils.check_int("top_k", top_k, 1)
        if self.top_k > self.stages[0]["trials"]:
            raise utils.invalid_value(
                "top_k",
                f"an integer in [1, {self.stages[0]['trials']}] (at most the "
                "trials of the first stage)",
                top_k,
            )
        self.margin = utils.check_float("margin", margin, 0.0)
        later = min((s["trials"] for s in self.stages[1:]), default=1)
        high = min(self.top_k, later - 1)
        is_count = isinstance(promote, int) and not isinstance(promote, bool)
        if not is_count or not 0 <= promote <= high:
            raise utils.invalid_value(
                "promote",
                f"an integer in [0, {high}] (at most top_k, and less than the "
                "trials of every later stage)",
                promote,
            )
        self.promote = int(promote)
        super().__init__(
            objective=objective,
            max_trials=sum(s["trials"] for s in self.stages),
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self._stage = 0  # Index of the current stage.
        self._stage_of = {}  # trial_id -> stage index.
        self._stage_info = []  # One record per opened stage.
        self._warned_no_last = False

    # -- public views ------------------------------------------------------

    @property
    def current_stage(self) -> int:
        """The number (1-based) of the stage trials are drawn from now."""
        return self._stage + 1

    def stage_of(self, trial_id: str) -> int:
        """The stage number (1-based) of a trial."""
        return self._stage_of[trial_id] + 1

    @property
    def stage_ranges(self) -> list[dict]:
        """One record per stage opened so far.

        Each is a dict with `"stage"` (1-based), `"trials"`, `"epochs"`,
        `"ranges"` (hyper-parameter name -> range dict, see
        `kerasreg.tuners.narrowing`), `"from_trials"` (ids of the top trials
        the ranges come from; empty for stage 1), `"promoted"` (ids of the
        earlier trials it re-runs first, see `promote`), `"exhausted"` and
        `"design"` (hyper-parameter name -> the stage's Latin-hypercube
        quantiles, one per trial; None for `design="random"`).
        """
        return copy.deepcopy(self._stage_info)

    def stage_summary(self) -> str:
        """The stages and the ranges each one searched, as text."""
        lines = []
        for info in self._stage_info:
            index = info["stage"] - 1
            ids = [t for t, s in self._stage_of.items() if s == index]
            done = [
                self.trials[t]
                for t in ids
                if t in self.trials and self.trials[t].status == TrialStatus.COMPLETED
            ]
            scores = [t.score for t in done if t.score is not None]
            finite = [s for s in scores if math.isfinite(s)]
            best = (
                (max(finite) if self.objective.direction == "max" else min(finite))
                if finite
                else None
            )
            epochs = info["epochs"] if info["epochs"] is not None else "search()"
            head = (
                f"Stage {info['stage']}/{len(self.stages)}: {len(ids)}/"
                f"{info['trials']} trials, {epochs} epochs"
            )
            if best is not None:
                head += f", best {self.objective.name} = {best:.4g}"
            if info["exhausted"]:
                head += " (space exhausted, stage ended early)"
            lines.append(head)
            if info["from_trials"]:
                lines.append(
                    f"  narrowed from the top {len(info['from_trials'])} trials "
                    f"{info['from_trials']}"
                )
            if info.get("promoted"):
                lines.append(f"  re-runs first the best trials {info['promoted']}")
            for name, range_ in info["ranges"].items():
                lines.append(f"  {name}: {narrowing.format_range(range_)}")
        return "\n".join(lines)

    # -- the strategy --------------------------------------------------------

    def populate_space(self, trial_id):
        """Values for the next trial: of the current stage, or of the next one.

        Returns:
            A dict with `"status"` (`"RUNNING"`, `"IDLE"` while trials of the
            finished stage are still running, `"STOPPED"`) and `"values"`.
        """
        if not self._stage_info:
            self._open_stage(0)
        while True:
            spec = self.stages[self._stage]
            info = self._stage_info[self._stage]
            created = sum(1 for s in self._stage_of.values() if s == self._stage)
            promoted = info.get("promoted") or []
            if created < len(promoted):
                values = dict(self.trials[promoted[created]].hyperparameters.values)
                values.update(self._bookkeeping(self._stage))
                self._stage_of[trial_id] = self._stage
                return {"status": TrialStatus.RUNNING, "values": values}
            if created < spec["trials"] and not info["exhausted"]:
                values = self._sample_values(info, created - len(promoted))
                if values is not None:
                    self._stage_of[trial_id] = self._stage
                    return {"status": TrialStatus.RUNNING, "values": values}
                info["exhausted"] = True
                warnings.warn(
                    f"CoarseToFineOracle: stage {self._stage + 1} found no new "
                    f"values after {self._max_collisions} tries; the stage ends "
                    f"early with {created} trials.",
                    stacklevel=2,
                )
            # Every trial of the stage exists: the next stage may only narrow
            # once all of them (and any retries) have ended. (`_retry_queue`,
            # like `_seed_state`, `_max_collisions` and the value hashes below,
            # is the base Oracle's state, private but what keras-tuner's own
            # oracles use: it has no public equivalent.)
            if self.ongoing_trials or self._retry_queue:
                return {"status": TrialStatus.IDLE, "values": None}
            if self._stage + 1 == len(self.stages):
                return {"status": TrialStatus.STOPPED, "values": None}
            self._open_stage(self._stage + 1)

    def _open_stage(self, index: int) -> None:
        space = self.hyperparameters.space
        from_trials = []
        if index == 0:
            ranges = {}
            for hp in space:
                range_ = narrowing.full_range(hp)
                if range_ is not None:
                    ranges[hp.name] = range_
        else:
            previous = self._stage_info[index - 1]["ranges"]
            top = self._top_trials(index)
            from_trials = [t.trial_id for t in top]
            if not top:
                warnings.warn(
                    f"CoarseToFineOracle: no completed trial with a finite score "
                    f"before stage {index + 1}; it keeps the ranges of stage "
                    f"{index}.",
                    stacklevel=3,
                )
            ranges = {}
            for hp in space:
                prev = previous.get(hp.name) or narrowing.full_range(hp)
                if prev is None:
                    continue
                seen = [
                    t.hyperparameters.values[hp.name]
                    for t in top
                    if hp.name in t.hyperparameters.values
                ]
                if not seen:
                    ranges[hp.name] = prev
                elif narrowing.is_numeric(hp):
                    ranges[hp.name] = narrowing.narrow_numeric(
                        hp, seen, prev, self.margin
                    )
                else:
                    ranges[hp.name] = narrowing.narrow_choice(hp, seen)
        spec = self.stages[index]
        promoted = from_trials[: self.promote]
        design = None
        if self.design == "latin_hypercube":
            # Quantiles drawn once per stage and saved with it, so a resumed
            # or distributed search hands out the same points.
            design = narrowing.latin_hypercube(
                sorted(ranges), spec["trials"] - len(promoted), self._rng()
            )
        self._stage_info.append(
            {
                "stage": index + 1,
                "trials": spec["trials"],
                "epochs": spec["epochs"],
                "ranges": ranges,
                "from_trials": from_trials,
                "promoted": promoted,
                "exhausted": False,
                "design": design,
            }
        )
        self._stage = index

    def _top_trials(self, index: int) -> list:
        done = [
            (self.trials[t], self._rank_value(self.trials[t]))
            for t, s in self._stage_of.items()
            if s < index
            and t in self.trials
            and self.trials[t].status == TrialStatus.COMPLETED
        ]
        done = [(t, v) for t, v in done if v is not None and math.isfinite(v)]
        done.sort(key=lambda tv: tv[1], reverse=self.objective.direction == "max")
        return [t for t, _ in done[: self.top_k]]

    def _rank_value(self, trial) -> float | None:
        """The value `rank_by` ranks `trial` by (None: it cannot count)."""
        if trial.score is None or not math.isfinite(trial.score):
            return None  # Failed to report, or exploded (scored the worst).
        if self.rank_by == "best":
            return trial.score
        if not trial.metrics.exists(LAST_METRIC):
            if not self._warned_no_last:
                self._warned_no_last = True
                warnings.warn(
                    f"CoarseToFineOracle: rank_by='last' found no "
                    f"{LAST_METRIC!r} in trial {trial.trial_id}'s metrics (a "
                    "run_trial that returns its own results reports none; "
                    "`CoarseToFineSearch` adds it to every History): such trials "
                    "are ranked by their score.",
                    stacklevel=4,
                )
            return trial.score
        return float(trial.metrics.get_last_value(LAST_METRIC))

    def _rng(self) -> random.Random:
        """A generator for the next draw, independent across seeds.

        (`_seed_state` is the base Oracle's draw counter, saved in its state;
        a string seed is hashed with SHA-512, so `(seed, counter)` pairs of
        different searches never coincide as `seed + counter` does.)
        """
        rng = random.Random(f"CoarseToFineOracle/{self.seed}/{self._seed_state}")
        self._seed_state += 1
        return rng

    def _sample_values(self, info: dict, index: int) -> dict | None:
        """Values of trial number `index` (0-based) of the stage of `info`."""
        ranges = info["ranges"]
        design = info.get("design") or {}
        collisions = 0
        while True:
            hps = HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    if hp.name not in ranges:
                        # Declared after the stage opened (e.g. in `run_trial`):
                        # searched over its declared range, shown as such.
                        full = narrowing.full_range(hp)
                        if full is not None:
                            ranges[hp.name] = full
                    quantiles = design.get(hp.name)
                    if not collisions and quantiles and index < len(quantiles):
                        value = narrowing.value_at(
                            hp, ranges[hp.name], quantiles[index]
                        )
                    else:  # Not in the design, or its point was taken.
                        value = narrowing.sample(hp, ranges.get(hp.name), self._rng())
                    hps.values[hp.name] = value
            values = dict(hps.values)
            values.update(self._bookkeeping(info["stage"] - 1))
            if self._duplicate(values):
                collisions += 1
                if collisions > self._max_collisions:
                    return None
                continue
            return values

    def end_trial(self, trial):
        # Bookkeeping out of the recorded values (a worker's trial comes back
        # with the values it was sent, unless its tuner took them out).
        _take_bookkeeping(trial.hyperparameters)
        return super().end_trial(trial)

    def _record_values(self, trial):
        # (Overrides the base Oracle's private hook: no public one exists.)
        # keras-tuner's duplicate record, hashed with the trial's stage and
        # epochs whether or not they are still in the values: a configuration
        # may come back in a later stage, never twice in one.
        hp = trial.hyperparameters
        hp.ensure_active_values()
        values = dict(hp.values)
        if trial.trial_id in self._stage_of:
            values.update(self._bookkeeping(self._stage_of[trial.trial_id]))
        new_hash = self._compute_values_hash(values)
        self._tried_so_far.add(new_hash)
        old_hash = self._id_to_hash[trial.trial_id]
        if old_hash != new_hash:
            self._id_to_hash[trial.trial_id] = new_hash
            self._tried_so_far.discard(old_hash)

    def _bookkeeping(self, index: int) -> dict:
        """The values that tell a trial of stage `index` (0-based) its budget."""
        values = {STAGE_KEY: index + 1}
        if self.stages[index]["epochs"] is not None:
            values[EPOCHS_KEY] = self.stages[index]["epochs"]
        return values

    def budget_of(self, trial_id: str) -> dict:
        """`{"stage": ..., "epochs": ...}` of a trial (epochs None: `search`'s)."""
        stage = self.stage_of(trial_id)
        return {"stage": stage, "epochs": self.stages[stage - 1]["epochs"]}

    # -- state (saved with every trial; restored by `overwrite=False`) ------

    def get_state(self):
        state = super().get_state()
        state.update(
            {
                "stages": self.stages,
                "top_k": self.top_k,
                "margin": self.margin,
                "design": self.design,
                "promote": self.promote,
                "rank_by": self.rank_by,
                "stage": self._stage,
                "stage_of": self._stage_of,
                "stage_info": self._stage_info,
            }
        )
        return state

    def set_state(self, state):
        super().set_state(state)
        if [dict(s) for s in state["stages"]] != self.stages:
            raise ValueError(
                "The project being reloaded was searched with "
                f"stages={state['stages']}, but this oracle has "
                f"stages={self.stages}. Pass the same stages to resume, or "
                "`overwrite=True` / a new `project_name` to start afresh."
            )
        self.top_k = state["top_k"]
        self.margin = state["margin"]
        self.design = state.get("design", "random")
        self.promote = state.get("promote", 0)
        self.rank_by = state.get("rank_by", "best")
        self._stage = state["stage"]
        self._stage_of = dict(state["stage_of"])
        self._stage_info = state["stage_info"]


def worst_value(direction: str) -> float:
    """The score an exploding trial gets: -inf to maximise, +inf to minimise."""
    return -math.inf if direction == "max" else math.inf


class CoarseToFineSearch(keras_tuner.Tuner):
    """Coarse-to-fine random search in log space (a thin keras-tuner Tuner).

    The search strategy is `CoarseToFineOracle` (see there for how stages
    narrow the space). This tuner adds two things to `keras_tuner.Tuner`:

    - each trial trains for its stage's `"epochs"` (overriding the `epochs`
      given to `search`); a hypermodel reads them with `trial_epochs(hp)`
      and the stage with `trial_stage(hp)`: they are not among `hp.values`;
    - each execution gets its own `kerasreg.callbacks.ExplosionDetector`
      (`monitor="loss"`, `factor=explosion_factor`, `warmup_batches=1`): a
      trial whose cost goes above `explosion_factor` x its initial cost (the
      first batch's), or becomes NaN / inf, stops
      at once and is scored as the worst possible value (`-inf` for a
      maximised objective, `+inf` for a minimised one) with the metric
      `"exploded"` = 1. It counts as completed, so the search goes on and
      `max_consecutive_failed_trials` never stops the search because of it.

    Callbacks given to `search` are deep-copied for every trial, as in every
    keras-tuner tuner. `results_summary()` shows the ranges of every stage
    before the best trials.

    Args:
        hypermodel: A `keras_tuner.HyperModel` (e.g.
            `kerasreg.tuners.RegularizationHyperModel`) or a function
            `build(hp) -> keras.Model`. Defaults to `None` (only when
            `run_trial` is overridden).
        objective: What to optimise, e.g. `"val_accuracy"`. Defaults to
            `None`.
        stages: The stages (see `CoarseToFineOracle`). Defaults to
            `[{"trials": 30, "epochs": 5}, {"trials": 20, "epochs": 10}]`.
        top_k: Best trials that define the next stage. Defaults to `5`.
        margin: Range widening (see `CoarseToFineOracle`). Defaults to `0.1`.
        seed: Random seed. Defaults to `None`.
        explosion_factor: Threshold of the `ExplosionDetector`, > 1, or
            `None` to add no detector. Defaults to `3.0`.
        hyperparameters: As in keras-tuner. Defaults to `None`.
        tune_new_entries: As in keras-tuner. Defaults to `True`.
        allow_new_entries: As in keras-tuner. Defaults to `True`.
        max_retries_per_trial: As in keras-tuner. Defaults to `0`.
        max_consecutive_failed_trials: As in keras-tuner. Defaults to `3`.
        design: `"latin_hypercube"` or `"random"` (see
            `CoarseToFineOracle`). Defaults to `"latin_hypercube"`.
        promote: Best configurations each later stage re-runs first (see
            `CoarseToFineOracle`). Defaults to `0`.
        rank_by: `"best"` (the trials' scores) or `"last"` (the objective at
            their last epoch) ranks the trials that define the next stage
            (see `CoarseToFineOracle`). Defaults to `"best"`.
        **kwargs: Any other `keras_tuner.Tuner` argument (`directory`,
            `project_name`, `overwrite`, `executions_per_trial`, ...).

    Example:

    >>> import keras
    >>> from kerasreg.tuners import RegularizationHyperModel
    >>> def build(l2, dropout):
    ...     reg = keras.regularizers.L2(l2)
    ...     return keras.Sequential([
    ...         keras.Input((3072,)),
    ...         keras.layers.Dense(50, activation="relu", kernel_regularizer=reg),
    ...         keras.layers.Dropout(dropout),
    ...         keras.layers.Dense(10, activation="softmax"),
    ...     ])
    >>> tuner = CoarseToFineSearch(
    ...     RegularizationHyperModel(
    ...         build, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    ...     ),
    ...     objective="val_accuracy",
    ...     stages=[{"trials": 20, "epochs": 2}, {"trials": 10, "epochs": 6}],
    ...     top_k=4, directory="runs", project_name="c2f", overwrite=True,
    ... )  # doctest: +SKIP
    >>> tuner.search(x, y, validation_data=(x_val, y_val))  # doctest: +SKIP
    >>> tuner.results_summary()  # doctest: +SKIP

    Reference:
        Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
        JMLR 2012; CS231n, "Hyperparameter optimization".
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        stages: Sequence[dict] = DEFAULT_STAGES,
        top_k: int = 5,
        margin: float = 0.1,
        seed: int | None = None,
        explosion_factor: float | None = 3.0,
        hyperparameters=None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        design: str = "latin_hypercube",
        promote: int = 0,
        rank_by: str = "best",
        **kwargs,
    ):
        if explosion_factor is not None:
            explosion_factor = utils.check_float(
                "explosion_factor", explosion_factor, 1.0, low_inclusive=False
            )
        self.seed = seed
        self.explosion_factor = explosion_factor
        self.idle_wait = 0.5  # Seconds between asks while the oracle waits.
        self._asked_without_trial = False
        oracle = CoarseToFineOracle(
            objective=objective,
            stages=stages,
            top_k=top_k,
            margin=margin,
            seed=seed,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            design=design,
            promote=promote,
            rank_by=rank_by,
        )
        super().__init__(oracle, hypermodel, **kwargs)

    def pre_create_trial(self):
        # `search` asks again at once when the oracle answers "IDLE" (a worker
        # waiting for the other workers to end a stage): pause between asks.
        if self._asked_without_trial:
            time.sleep(self.idle_wait)
        self._asked_without_trial = True

    def on_trial_begin(self, trial):
        self._asked_without_trial = False
        # The stage and epochs out of the hyper-parameters, before anything
        # (run_trial, the hypermodel) reads them; `trial_epochs(hp)` finds them.
        hp = trial.hyperparameters
        budget = _take_bookkeeping(hp)
        if budget["stage"] is None and isinstance(self.oracle, CoarseToFineOracle):
            try:  # the chief's own record (e.g. a trial resumed from disk)
                budget = self.oracle.budget_of(trial.trial_id)
            except KeyError:
                pass
        _BUDGETS[hp] = budget
        super().on_trial_begin(trial)

    def run_trial(self, trial, *args, **kwargs):
        """Trains one configuration for its stage's epochs."""
        epochs = trial_epochs(trial.hyperparameters)
        if epochs is not None:
            kwargs["epochs"] = epochs
        return super().run_trial(trial, *args, **kwargs)

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # keras-tuner's per-execution hook, private (its public `run_trial`
        # sees the callbacks before they are deep-copied per execution): add a
        # fresh detector to this execution's copies, to read after fit.
        detector = None
        if self.explosion_factor is not None:
            from kerasreg.callbacks import ExplosionDetector

            # The reference is the first batch's cost: the cost before training
            # moved the weights, which is what "its initial cost" means here.
            detector = ExplosionDetector(
                monitor="loss",
                factor=self.explosion_factor,
                warmup_batches=1,
                verbose=0,
            )
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [detector]
        results = super()._build_and_fit_model(trial, *args, **kwargs)
        if detector is None or not detector.exploded:
            return self._with_last_value(results)
        objective = self.oracle.objective
        directions = getattr(objective, "name_to_direction", None) or {
            objective.name: objective.direction
        }
        worst = {name: worst_value(d) for name, d in directions.items()}
        worst[EXPLODED_METRIC] = 1.0
        trial.message = detector.message
        return worst

    def _with_last_value(self, results):
        """`results` with the objective's value at the last epoch added.

        keras-tuner reports a trial by its best epoch's metrics; the oracle's
        `rank_by="last"` also needs where the curve ended. For a History the
        value goes in as one more metric, constant over the epochs
        (`LAST_METRIC`), so keras-tuner's own conversion (best epoch, best
        step, the average over executions) is unchanged. It is added for
        every `rank_by`: on a worker of a distributed search the oracle is a
        client that does not know the chief's `rank_by`. Other results (a
        custom `run_trial`'s dict or number) pass unchanged.
        """
        history = getattr(results, "history", None)
        if not isinstance(history, dict) or not history:
            return results
        objective = self.oracle.objective
        n = max(len(v) for v in history.values())
        logs = {k: v[-1] for k, v in history.items() if len(v) == n}
        if not objective.has_value(logs):
            return results
        # `get_value` sums a multi-objective's parts, signed by direction.
        history[LAST_METRIC] = [float(objective.get_value(logs))] * n
        return results

    def results_summary(self, num_trials: int = 10):
        """Prints every stage's ranges, then keras-tuner's best trials."""
        if isinstance(self.oracle, CoarseToFineOracle):
            print("Coarse-to-fine stages")
            print(self.oracle.stage_summary())
            print()
        super().results_summary(num_trials)
