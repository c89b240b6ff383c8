"""Pure functions behind kerasreg's layers.

Each layer is a thin wrapper whose `call` validates the mode and delegates here
(as timm pairs `drop_path` with `DropPath`). Functions take tensors and an
explicit `seed` (a `keras.random.SeedGenerator` or an integer) and use only
`keras.ops` / `keras.random`, so they run on every Keras backend. Image
functions take channels-last batches `(N, H, W, C)`.

One module per concept: `dropout`, `drop_connect`, `drop_path`, `drop_block`
(stochastic regularization); `crop`, `pca_color`, `auto_augment`, `noise`
(augmentation); `views` (test-time augmentation).
"""

from kerasreg.ops.auto_augment import (
    adjust_brightness,
    adjust_color,
    adjust_contrast,
    adjust_sharpness,
    autocontrast,
    equalize,
    grayscale,
    invert,
    posterize,
    solarize,
)
from kerasreg.ops.crop import (
    crop_and_resize,
    sample_resized_crop_boxes,
    sample_scale_crop_boxes,
)
from kerasreg.ops.drop_block import drop_block_2d, drop_block_mask
from kerasreg.ops.drop_connect import (
    drop_connect_kernel,
    drop_connect_mask,
    drop_connect_matmul_per_example,
)
from kerasreg.ops.drop_path import drop_path
from kerasreg.ops.dropout import inverted_dropout
from kerasreg.ops.noise import pixel_noise
from kerasreg.ops.pca_color import (
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    pca_color_offset,
)
from kerasreg.ops.views import tta_views

__all__ = [
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "adjust_brightness",
    "adjust_color",
    "adjust_contrast",
    "adjust_sharpness",
    "autocontrast",
    "crop_and_resize",
    "drop_block_2d",
    "drop_block_mask",
    "drop_connect_kernel",
    "drop_connect_mask",
    "drop_connect_matmul_per_example",
    "drop_path",
    "equalize",
    "grayscale",
    "invert",
    "inverted_dropout",
    "pca_color_offset",
    "pixel_noise",
    "posterize",
    "sample_resized_crop_boxes",
    "sample_scale_crop_boxes",
    "solarize",
    "tta_views",
]
