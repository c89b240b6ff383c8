"""kerasreg callbacks: drop them into `model.fit(callbacks=[...])`."""

from kerasreg.callbacks._train_step_hook import remove_train_step_hooks
from kerasreg.callbacks.ema_weights import EMAWeights, ema_decay
from kerasreg.callbacks.explosion_detector import (
    ExplosionDetector,
    TrainingExplodedError,
)
from kerasreg.callbacks.learning_rate_finder import (
    LearningRateFinder,
    LearningRateFinderResult,
    find_learning_rate,
    suggest_learning_rate,
)
from kerasreg.callbacks.smoothed_early_stopping import (
    SmoothedEarlyStopping,
    StopReason,
)
from kerasreg.callbacks.snapshot_ensemble import (
    SnapshotEnsemble,
    cycle_boundaries,
    snapshot_learning_rate,
)
from kerasreg.callbacks.swa import SWA, update_batch_norm

__all__ = [
    "EMAWeights",
    "ExplosionDetector",
    "LearningRateFinder",
    "LearningRateFinderResult",
    "SWA",
    "SmoothedEarlyStopping",
    "SnapshotEnsemble",
    "StopReason",
    "TrainingExplodedError",
    "cycle_boundaries",
    "ema_decay",
    "find_learning_rate",
    "remove_train_step_hooks",
    "snapshot_learning_rate",
    "suggest_learning_rate",
    "update_batch_norm",
]
