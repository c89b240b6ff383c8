"""kerasreg callbacks: drop them into `model.fit(callbacks=[...])`."""

from kerasreg.callbacks.ema_weights import EMAWeights, ema_decay  # noqa: F401
from kerasreg.callbacks.explosion_detector import (  # noqa: F401
    ExplosionDetector,
    TrainingExplodedError,
)
from kerasreg.callbacks.learning_rate_finder import (  # noqa: F401
    LearningRateFinder,
    LearningRateFinderResult,
    find_learning_rate,
    suggest_learning_rate,
)
from kerasreg.callbacks.smoothed_early_stopping import (  # noqa: F401
    SmoothedEarlyStopping,
    StopReason,
)
from kerasreg.callbacks.snapshot_ensemble import (  # noqa: F401
    SnapshotEnsemble,
    cycle_boundaries,
    snapshot_learning_rate,
)
from kerasreg.callbacks.swa import SWA, update_batch_norm  # noqa: F401
