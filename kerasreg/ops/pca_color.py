"""AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al. 2012).

`pca_color_offset` is the per-image RGB shift along the principal components
of the pixel colours; `_rgb_covariance_eigen` turns the moments streamed by
`PCAColorAugmentation.adapt` into those components.
"""

from __future__ import annotations

import numpy as np
from keras import ops

#: AlexNet's ImageNet RGB eigenvalues (pixels scaled to [0, 1]).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
#: AlexNet's ImageNet RGB eigenvectors, one per column.
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def pca_color_offset(alpha, eigval, eigvec):
    """Fancy-PCA RGB shift per image: `sum_i alpha_i * lambda_i * p_i`.

    Args:
        alpha: `(N, 3)` random coefficients, one row per image.
        eigval: `(3,)` eigenvalues `lambda_i`.
        eigvec: `(3, 3)` eigenvectors `p_i` as columns.

    Returns:
        `(N, 3)` offsets to add to every pixel of each image.
    """
    return ops.matmul(alpha * eigval[None, :], ops.transpose(eigvec))


def _rgb_covariance_eigen(
    count: float, total: np.ndarray, outer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-pairs of the RGB covariance from streamed moments (float64).

    Args:
        count: number of pixels seen.
        total: `(3,)` sum of the pixels.
        outer: `(3, 3)` sum of the outer products `x x^T`.

    Returns:
        `(eigval, eigvec)`: eigenvalues in decreasing order and the matching
        eigenvectors as columns (each with a non-negative sum, a fixed sign).
    """
    if count < 2:
        raise ValueError(
            f"Need at least 2 pixels to estimate a covariance. Got {count}."
        )
    mean = total / count
    cov = (outer - count * np.outer(mean, mean)) / (count - 1)
    cov = (cov + cov.T) / 2.0
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval = np.clip(eigval[order], 0.0, None)
    eigvec = eigvec[:, order]
    signs = np.where(eigvec.sum(axis=0) < 0, -1.0, 1.0)
    return eigval, eigvec * signs
