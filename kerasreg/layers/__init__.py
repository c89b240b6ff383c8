"""kerasreg layers: stochastic regularization, bottlenecks and augmentation.

`AugmentationLayer` is the base class to subclass for a new augmentation
layer (per-image randomness, `tf.data` on every backend). Monte-Carlo
prediction with the dropout layers is `kerasreg.mc_predict`.
"""

from kerasreg.layers.augmentation_layer import AugmentationLayer
from kerasreg.layers.auto_augment import AutoAugment
from kerasreg.layers.drop_block import DropBlock2D
from kerasreg.layers.drop_connect import DropConnectConv2D, DropConnectDense
from kerasreg.layers.drop_path import DropPath
from kerasreg.layers.inverted_dropout import InvertedDropout
from kerasreg.layers.low_rank import LowRankDense, LowRankReport
from kerasreg.layers.pca_color_augmentation import PCAColorAugmentation
from kerasreg.layers.random_pixel_noise import RandomPixelNoise
from kerasreg.layers.random_resized_crop import RandomResizedCrop
from kerasreg.layers.random_scale_crop import RandomScaleCrop

__all__ = [
    "AugmentationLayer",
    "AutoAugment",
    "DropBlock2D",
    "DropConnectConv2D",
    "DropConnectDense",
    "DropPath",
    "InvertedDropout",
    "LowRankDense",
    "LowRankReport",
    "PCAColorAugmentation",
    "RandomPixelNoise",
    "RandomResizedCrop",
    "RandomScaleCrop",
]
