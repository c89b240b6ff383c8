"""Tests for kerasreg.ops.pca_color: the fancy-PCA maths."""

import numpy as np

from kerasreg.ops import pca_color
from tests.toolkit import to_numpy as np_


def test_rgb_covariance_eigen_matches_eigh():
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(5000, 3)) @ np.array(
        [[1.0, 0.5, 0.2], [0.0, 0.6, 0.1], [0.0, 0.0, 0.2]]
    )
    val, vec = pca_color._rgb_covariance_eigen(
        len(pixels), pixels.sum(0), pixels.T @ pixels
    )
    ref_val, ref_vec = np.linalg.eigh(np.cov(pixels.T))
    np.testing.assert_allclose(val, ref_val[::-1], rtol=1e-8)
    np.testing.assert_allclose(np.abs(vec.T @ ref_vec[:, ::-1]), np.eye(3), atol=1e-8)


def test_pca_color_offset_is_the_sum_of_scaled_eigenvectors():
    eigval = np.array(pca_color.IMAGENET_PCA_EIGVAL, "float32")
    eigvec = np.array(pca_color.IMAGENET_PCA_EIGVEC, "float32")
    alpha = np.array([[1.0, 0.0, 0.0], [0.1, -0.2, 0.3]], "float32")
    out = np_(pca_color.pca_color_offset(alpha, eigval, eigvec))
    expected = np.stack(
        [sum(a[i] * eigval[i] * eigvec[:, i] for i in range(3)) for a in alpha]
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)
