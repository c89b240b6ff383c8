"""kerasreg callbacks: drop them into `model.fit(callbacks=[...])`."""

from kerasreg.callbacks.explosion_detector import (  # noqa: F401
    ExplosionDetector,
    TrainingExplodedError,
)
