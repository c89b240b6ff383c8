"""Tests for kerasreg.ops.views: the test-time augmentation views."""

import numpy as np

from kerasreg.ops.views import tta_views
from tests import toolkit
from tests.toolkit import to_numpy as np_


def test_tta_views_ten_crop_layout():
    x = toolkit.images(2, 6, 6, 1)
    views = np_(tta_views(x, (4, 4), crops="ten"))
    assert views.shape == (10, 2, 4, 4, 1)
    np.testing.assert_allclose(views[0], x[:, 1:5, 1:5])  # centre
    np.testing.assert_allclose(views[1], x[:, 1:5, 1:5][:, :, ::-1])  # mirror
    np.testing.assert_allclose(views[2], x[:, :4, :4])  # top-left
    np.testing.assert_allclose(views[8], x[:, 2:, 2:])  # bottom-right


def test_tta_views_padding_reflects_and_scales_resize():
    x = toolkit.images(1, 4, 4, 1)
    views = np_(tta_views(x, (4, 4), crops="five", flips=False, padding=1))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_allclose(views[1], padded[:, :4, :4])
    views = np_(tta_views(x, (4, 4), crops="center", flips=False, scales=[4, 8]))
    assert views.shape == (2, 1, 4, 4, 1)
    np.testing.assert_allclose(views[0], x)
