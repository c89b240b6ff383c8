"""Tests for AutoAugment: the policy tables against the paper, per-image draws."""

import keras
import numpy as np
import pytest

from kerasreg.layers import AutoAugment
from kerasreg.layers.auto_augment import OPERATIONS, reference_augment
from tests import toolkit
from tests.toolkit import to_numpy as np_

# The paper's appendix (Cubuk et al. 2019, arXiv 1805.09501v3), typed from
# its tables: "operation probability magnitude" for the two steps.
PAPER = {
    "cifar10": """
        Invert 0.1 7 Contrast 0.2 6 | Rotate 0.7 2 TranslateX 0.3 9
        Sharpness 0.8 1 Sharpness 0.9 3 | ShearY 0.5 8 TranslateY 0.7 9
        AutoContrast 0.5 8 Equalize 0.9 2 | ShearY 0.2 7 Posterize 0.3 7
        Color 0.4 3 Brightness 0.6 7 | Sharpness 0.3 9 Brightness 0.7 9
        Equalize 0.6 5 Equalize 0.5 1 | Contrast 0.6 7 Sharpness 0.6 5
        Color 0.7 7 TranslateX 0.5 8 | Equalize 0.3 7 AutoContrast 0.4 8
        TranslateY 0.4 3 Sharpness 0.2 6 | Brightness 0.9 6 Color 0.2 8
        Solarize 0.5 2 Invert 0.0 3 | Equalize 0.2 0 AutoContrast 0.6 0
        Equalize 0.2 8 Equalize 0.6 4 | Color 0.9 9 Equalize 0.6 6
        AutoContrast 0.8 4 Solarize 0.2 8 | Brightness 0.1 3 Color 0.7 0
        Solarize 0.4 5 AutoContrast 0.9 3 | TranslateY 0.9 9 TranslateY 0.7 9
        AutoContrast 0.9 2 Solarize 0.8 3 | Equalize 0.8 8 Invert 0.1 3
        TranslateY 0.7 9 AutoContrast 0.9 1""",
    "imagenet": """
        Posterize 0.4 8 Rotate 0.6 9 | Solarize 0.6 5 AutoContrast 0.6 5
        Equalize 0.8 8 Equalize 0.6 3 | Posterize 0.6 7 Posterize 0.6 6
        Equalize 0.4 7 Solarize 0.2 4 | Equalize 0.4 4 Rotate 0.8 8
        Solarize 0.6 3 Equalize 0.6 7 | Posterize 0.8 5 Equalize 1.0 2
        Rotate 0.2 3 Solarize 0.6 8 | Equalize 0.6 8 Posterize 0.4 6
        Rotate 0.8 8 Color 0.4 0 | Rotate 0.4 9 Equalize 0.6 2
        Equalize 0.0 7 Equalize 0.8 8 | Invert 0.6 4 Equalize 1.0 8
        Color 0.6 4 Contrast 1.0 8 | Rotate 0.8 8 Color 1.0 2
        Color 0.8 8 Solarize 0.8 7 | Sharpness 0.4 7 Invert 0.6 8
        ShearX 0.6 5 Equalize 1.0 9 | Color 0.4 0 Equalize 0.6 3
        Equalize 0.4 7 Solarize 0.2 4 | Solarize 0.6 5 AutoContrast 0.6 5
        Invert 0.6 4 Equalize 1.0 8 | Color 0.6 4 Contrast 1.0 8
        Equalize 0.8 8 Equalize 0.6 3""",
    "svhn": """
        ShearX 0.9 4 Invert 0.2 3 | ShearY 0.9 8 Invert 0.7 5
        Equalize 0.6 5 Solarize 0.6 6 | Invert 0.9 3 Equalize 0.6 3
        Equalize 0.6 1 Rotate 0.9 3 | ShearX 0.9 4 AutoContrast 0.8 3
        ShearY 0.9 8 Invert 0.4 5 | ShearY 0.9 5 Solarize 0.2 6
        Invert 0.9 6 AutoContrast 0.8 1 | Equalize 0.6 3 Rotate 0.9 3
        ShearX 0.9 4 Solarize 0.3 3 | ShearY 0.8 8 Invert 0.7 4
        Equalize 0.9 5 TranslateY 0.6 6 | Invert 0.9 4 Equalize 0.6 7
        Contrast 0.3 3 Rotate 0.8 4 | Invert 0.8 5 TranslateY 0.0 2
        ShearY 0.7 6 Solarize 0.4 8 | Invert 0.6 4 Rotate 0.8 4
        ShearY 0.3 7 TranslateX 0.9 3 | ShearX 0.1 6 Invert 0.6 5
        Solarize 0.7 2 TranslateY 0.6 7 | ShearY 0.8 4 Invert 0.8 8
        ShearX 0.7 9 TranslateY 0.8 3 | ShearY 0.8 5 AutoContrast 0.7 3
        ShearX 0.7 2 Invert 0.1 5""",
}


# A small policy for the tests about mechanics (compiles fast on JAX).
SMALL = [
    [("Equalize", 0.5, 0), ("Rotate", 0.5, 5)],
    [("Color", 0.5, 5), ("Invert", 0.5, 0)],
]


def parse(text):
    t = text.replace("|", " ").split()
    assert len(t) % 6 == 0
    return [
        [
            (t[i], float(t[i + 1]), int(t[i + 2])),
            (t[i + 3], float(t[i + 4]), int(t[i + 5])),
        ]
        for i in range(0, len(t), 6)
    ]


@pytest.mark.parametrize("policy", ["cifar10", "imagenet", "svhn"])
def test_policy_tables_are_the_papers(policy):
    layer = AutoAugment(policy)
    assert len(layer.policies) == 25
    assert all(len(sub) == 2 for sub in layer.policies)
    assert layer.policies == [
        [tuple(step) for step in sub] for sub in parse(PAPER[policy])
    ]


def test_layer_battery(tmp_path):
    x = toolkit.images(8, 8, 8, 3)
    toolkit.check_layer(
        lambda: AutoAugment("cifar10", seed=1), x, tmp_path, tf_data=True
    )


def test_one_sub_policy_per_image():
    # Sub-policy 0 always inverts, sub-policy 1 never does anything.
    policy = [
        [("Invert", 1.0, 0), ("Invert", 0.0, 0)],
        [("Invert", 0.0, 0), ("Invert", 0.0, 0)],
    ]
    x = np.repeat(toolkit.images(1, 8, 8, 3), 32, 0)
    out = np_(AutoAugment(policy, seed=0)(x))
    inverted = np.all(np.isclose(out, 255 - x, atol=1e-3), axis=(1, 2, 3))
    kept = np.all(np.isclose(out, x, atol=1e-3), axis=(1, 2, 3))
    assert np.all(inverted | kept)
    assert 6 < inverted.sum() < 26  # about half, drawn per image


def test_probabilities_are_per_image_and_steps_compose():
    # Solarize at threshold 0 (magnitude 9) inverts; twice is the identity.
    policy = [[("Solarize", 0.5, 9), ("Solarize", 1.0, 9)]]
    x = toolkit.images(64, 4, 4, 3, seed=1)
    out = np_(AutoAugment(policy, seed=2)(x))
    same = np.all(np.isclose(out, x, atol=1e-3), axis=(1, 2, 3))
    flipped = np.all(np.isclose(out, 255 - x, atol=1e-3), axis=(1, 2, 3))
    assert np.all(same | flipped) and 16 < same.sum() < 48


def test_translation_moves_by_the_papers_magnitude():
    # TranslateX magnitude 9: 150/331 of the width, sign drawn per image.
    policy = [[("TranslateX", 1.0, 9), ("Invert", 0.0, 0)]]
    w = 64
    x = np.zeros((16, 8, w, 1), "float32")
    x[:, :, w // 2] = 255.0  # a vertical line in the middle
    out = np_(AutoAugment(policy, value_range=(0, 255), seed=3)(x))
    shift = 150 / 331 * w
    cols = np.argmax(out[:, 4, :, 0], axis=1)
    np.testing.assert_allclose(np.abs(cols - w // 2), round(shift), atol=1)
    assert len(set(np.sign(cols - w // 2))) == 2


def test_seeds_reproduce_inference_identity_and_single_image():
    x = toolkit.images(4, 8, 8, 3, dtype="uint8")
    a = np_(AutoAugment(SMALL, seed=5)(x))
    np.testing.assert_array_equal(a, np_(AutoAugment(SMALL, seed=5)(x)))
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(np_(AutoAugment("svhn")(x, training=False)), x)
    assert np_(AutoAugment(SMALL, seed=1)(x[0])).shape == (8, 8, 3)


def test_value_range_one():
    x = toolkit.images(4, 8, 8, 3, value_range=(0, 1), seed=3)
    a = np_(AutoAugment("imagenet", value_range=(0, 1), seed=5)(x))
    b = np_(AutoAugment("imagenet", value_range=(0, 255), seed=5)(x * 255))
    np.testing.assert_allclose(a * 255, b, atol=1e-2)


def test_grayscale_images():
    x = toolkit.images(4, 8, 8, 1, seed=3)
    policy = [[("Color", 1.0, 9), ("Equalize", 1.0, 0)]]
    assert np_(AutoAugment(policy, seed=1)(x)).shape == x.shape


@pytest.mark.parametrize(
    "policy",
    ["mnist", [], [[("Blur", 0.5, 3), ("Invert", 0.1, 0)]], [[("Invert", 1.5, 3)]], 3],
)
def test_bad_policies(policy):
    with pytest.raises(ValueError, match="policy"):
        AutoAugment(policy)


def test_bad_inputs():
    with pytest.raises(ValueError, match="channel"):
        AutoAugment("cifar10")(np.zeros((1, 8, 8, 2), "float32"))
    with pytest.raises(ValueError, match="shape"):
        AutoAugment("cifar10")(np.zeros((8, 8), "float32"))


@pytest.mark.parametrize("policy", ["cifar10", "imagenet", "svhn"])
def test_matches_the_select_everything_reference(policy):
    # Same seed, same draws: the grouped (TF) / fused (JAX) computation gives
    # the outputs of computing every operation for the batch and selecting.
    x = toolkit.images(48, 12, 12, 3, dtype="uint8", seed=4).astype("float32")
    out = np_(AutoAugment(policy, seed=7)(x))
    ref = np_(reference_augment(AutoAugment(policy, seed=7), keras.ops.array(x)))
    np.testing.assert_allclose(out, ref, atol=1e-3)
    changed = np.any(np.abs(ref - x) > 1e-3, axis=(1, 2, 3))
    assert 0.3 < changed.mean() < 1.0  # the comparison is not vacuous


def test_every_operation_matches_the_reference():
    # One sub-policy per operation, always applied, so every group is used.
    policy = [[(name, 1.0, 6), ("Invert", 0.0, 0)] for name in OPERATIONS]
    x = toolkit.images(64, 10, 10, 3, seed=5)
    out = np_(AutoAugment(policy, seed=2)(x))
    ref = np_(reference_augment(AutoAugment(policy, seed=2), keras.ops.array(x)))
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_seed_determinism_in_tf_data():
    import tensorflow as tf

    x = toolkit.images(8, 8, 8, 3, dtype="uint8", seed=6)

    def run():
        layer = AutoAugment("cifar10", seed=11)
        ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
        return np.concatenate([o.numpy() for o in ds.map(layer)])

    a = run()
    np.testing.assert_array_equal(a, run())
    assert not np.allclose(a, x)


def test_empty_batch_passes_through():
    import tensorflow as tf

    x = np.zeros((0, 8, 8, 3), "uint8")
    out = np_(AutoAugment("imagenet", seed=0)(x))
    assert out.shape == (0, 8, 8, 3)
    # In tf.data the batch size is only known at run time.
    layer = AutoAugment("cifar10", seed=0)
    ds = tf.data.Dataset.from_tensors(np.zeros((0, 8, 8, 3), "uint8"))
    (got,) = [o.numpy() for o in ds.map(layer)]
    assert got.shape == (0, 8, 8, 3)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (2, 5), (5, 1)])
def test_images_smaller_than_3x3(size):
    # Sharpness leaves them unchanged (all border); the other ops work.
    x = toolkit.images(8, *size, 3, dtype="uint8", seed=1).astype("float32")
    sharp = [[("Sharpness", 1.0, 9), ("Sharpness", 1.0, 5)]]
    np.testing.assert_allclose(np_(AutoAugment(sharp, seed=0)(x)), x, atol=1e-3)
    for policy in ("cifar10", "imagenet", "svhn"):
        out = np_(AutoAugment(policy, seed=3)(x))
        ref = np_(reference_augment(AutoAugment(policy, seed=3), keras.ops.array(x)))
        assert out.shape == x.shape
        np.testing.assert_allclose(out, ref, atol=1e-3)
