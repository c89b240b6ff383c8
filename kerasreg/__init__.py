"""kerasreg: the regularization bag of tricks for Keras 3.

Drop-in layers (augmentation, stochastic regularization, low-rank bottlenecks),
callbacks (smoothed early stopping, explosion detection, weight averaging,
snapshot ensembles, learning-rate finding), ensembles, training-pipeline
diagnostics and a keras-tuner integration. Backend-agnostic: only the public
`keras`, `keras.ops` and `keras.random` APIs are used.
"""

__version__ = "0.1.0"

from kerasreg import callbacks, layers, ops  # noqa: F401

# isort: split
# Weight regularization and Monte-Carlo prediction (issue 2).
from kerasreg import regularizers  # noqa: E402, F401
from kerasreg.mc import mc_predict  # noqa: E402, F401

# isort: split
# Data augmentation and test-time augmentation (issue 3).
from kerasreg import augmentation  # noqa: E402, F401
from kerasreg.tta import TestTimeAugmentation  # noqa: E402, F401

# isort: split
# Training-pipeline diagnostics and transfer learning (issue 5).
from kerasreg import diagnostics, transfer  # noqa: E402, F401

# isort: split

# Training callbacks' ensembles (issue 4).
from kerasreg import ensembles  # noqa: E402, F401

# isort: split
# CIFAR-10 for the examples and benchmarks: NumPy and the standard library at
# import time (Keras, TensorFlow and PIL only inside its functions).
from kerasreg import datasets  # noqa: E402, F401
