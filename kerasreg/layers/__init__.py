"""kerasreg layers: stochastic regularization, bottlenecks and augmentation."""

# Stochastic regularization and bottlenecks (issue 2).
from kerasreg.layers.drop_block import DropBlock2D  # noqa: E402, F401
from kerasreg.layers.drop_connect import (  # noqa: E402, F401
    DropConnectConv2D,
    DropConnectDense,
)
from kerasreg.layers.drop_path import DropPath  # noqa: E402, F401
from kerasreg.layers.inverted_dropout import InvertedDropout  # noqa: E402, F401
from kerasreg.layers.low_rank import LowRankDense, LowRankReport  # noqa: E402, F401
from kerasreg.mc import mc_predict  # noqa: E402, F401

# isort: split
# Data augmentation (issue 3).
from kerasreg.layers.augmentation_layer import AugmentationLayer  # noqa: E402, F401
from kerasreg.layers.auto_augment import AutoAugment  # noqa: E402, F401
from kerasreg.layers.pca_color_augmentation import (  # noqa: E402, F401
    PCAColorAugmentation,
)
from kerasreg.layers.random_pixel_noise import RandomPixelNoise  # noqa: E402, F401
from kerasreg.layers.random_resized_crop import RandomResizedCrop  # noqa: E402, F401
from kerasreg.layers.random_scale_crop import RandomScaleCrop  # noqa: E402, F401
