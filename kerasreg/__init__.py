"""kerasreg: the regularization bag of tricks for Keras 3.

Drop-in layers (augmentation, stochastic regularization, low-rank bottlenecks),
callbacks (smoothed early stopping, explosion detection, weight averaging,
snapshot ensembles, learning-rate finding), ensembles, training-pipeline
diagnostics and a keras-tuner integration (`kerasreg.tuners`, imported on its
own: it needs keras-tuner). Backend-agnostic: only the public `keras`,
`keras.ops` and `keras.random` APIs are used.

`kerasreg.datasets` needs only NumPy and the standard library at import time
(Keras, TensorFlow and PIL inside its functions).
"""

__version__ = "0.1.0"

from kerasreg import (
    augmentation,
    callbacks,
    datasets,
    diagnostics,
    ensembles,
    layers,
    ops,
    regularizers,
    transfer,
)
from kerasreg.mc import mc_predict
from kerasreg.tta import TestTimeAugmentation

__all__ = [
    "TestTimeAugmentation",
    "augmentation",
    "callbacks",
    "datasets",
    "diagnostics",
    "ensembles",
    "layers",
    "mc_predict",
    "ops",
    "regularizers",
    "transfer",
]
