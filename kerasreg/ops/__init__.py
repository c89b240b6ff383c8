"""Pure functions behind kerasreg's layers.

Each layer is a thin wrapper whose `call` validates the mode and delegates here
(as timm pairs `drop_path` with `DropPath`). Functions take tensors and an
explicit `seed` (a `keras.random.SeedGenerator` or an integer) and use only
`keras.ops` / `keras.random`, so they run on every Keras backend.
"""

# Stochastic regularization (issue 2).
from kerasreg.ops.drop_block import (  # noqa: E402, F401
    drop_block_2d,
    drop_block_gamma,
    drop_block_mask,
    drop_block_valid_region,
)
from kerasreg.ops.drop_connect import (  # noqa: E402, F401
    drop_connect_kernel,
    drop_connect_mask,
    drop_connect_matmul_per_example,
    drop_connect_variance,
    gaussian_moment_sampling,
    realised_rate,
)
from kerasreg.ops.drop_path import drop_path  # noqa: E402, F401
from kerasreg.ops.dropout import inverted_dropout  # noqa: E402, F401

# isort: split
# Image augmentation and test-time views (issue 3).
from kerasreg.ops.image import (  # noqa: E402, F401
    crop_and_resize,
    equalize,
    pca_color_offset,
    pixel_noise,
    rgb_covariance_eigen,
    sample_resized_crop_boxes,
    sample_scale_crop_boxes,
    tta_views,
)
