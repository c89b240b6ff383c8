"""AutoAugment: the learned augmentation policies of Cubuk et al. (2019)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasreg import utils
from kerasreg.layers.augmentation_layer import AugmentationLayer
from kerasreg.ops import image as image_ops

# The policies of the paper's appendix (arXiv 1805.09501v3, Tables 7-9):
# 25 sub-policies each, a sub-policy being two (operation, probability,
# magnitude) steps, magnitudes on the paper's 0-9 scale. Cross-checked with
# torchvision's `AutoAugmentPolicy` and DeepVoltaire/AutoAugment (the
# magnitudes of AutoContrast / Equalize / Invert are printed in the paper but
# unused by those operations).
CIFAR10_POLICY = (
    (("Invert", 0.1, 7), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, 8), ("Equalize", 0.9, 2)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, 5), ("Equalize", 0.5, 1)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, 7), ("AutoContrast", 0.4, 8)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, 3)),
    (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.2, 8), ("Equalize", 0.6, 4)),
    (("Color", 0.9, 9), ("Equalize", 0.6, 6)),
    (("AutoContrast", 0.8, 4), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 3)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, 2), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, 8), ("Invert", 0.1, 3)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 1)),
)

IMAGENET_POLICY = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
    (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)

SVHN_POLICY = (
    (("ShearX", 0.9, 4), ("Invert", 0.2, 3)),
    (("ShearY", 0.9, 8), ("Invert", 0.7, 5)),
    (("Equalize", 0.6, 5), ("Solarize", 0.6, 6)),
    (("Invert", 0.9, 3), ("Equalize", 0.6, 3)),
    (("Equalize", 0.6, 1), ("Rotate", 0.9, 3)),
    (("ShearX", 0.9, 4), ("AutoContrast", 0.8, 3)),
    (("ShearY", 0.9, 8), ("Invert", 0.4, 5)),
    (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
    (("Invert", 0.9, 6), ("AutoContrast", 0.8, 1)),
    (("Equalize", 0.6, 3), ("Rotate", 0.9, 3)),
    (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
    (("ShearY", 0.8, 8), ("Invert", 0.7, 4)),
    (("Equalize", 0.9, 5), ("TranslateY", 0.6, 6)),
    (("Invert", 0.9, 4), ("Equalize", 0.6, 7)),
    (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
    (("Invert", 0.8, 5), ("TranslateY", 0.0, 2)),
    (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
    (("Invert", 0.6, 4), ("Rotate", 0.8, 4)),
    (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
    (("ShearX", 0.1, 6), ("Invert", 0.6, 5)),
    (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
    (("ShearY", 0.8, 4), ("Invert", 0.8, 8)),
    (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
    (("ShearY", 0.8, 5), ("AutoContrast", 0.7, 3)),
    (("ShearX", 0.7, 2), ("Invert", 0.1, 5)),
)

POLICIES = {
    "cifar10": CIFAR10_POLICY,
    "imagenet": IMAGENET_POLICY,
    "svhn": SVHN_POLICY,
}

# Geometric operations: their id for `image_ops.geometric_transforms`.
GEOMETRIC = {"ShearX": 1, "ShearY": 2, "TranslateX": 3, "TranslateY": 4, "Rotate": 5}
# Pixel operations, applied after the geometric step of the same stage.
COLOR = (
    "Invert",
    "AutoContrast",
    "Equalize",
    "Solarize",
    "Posterize",
    "Contrast",
    "Color",
    "Brightness",
    "Sharpness",
)
OPERATIONS = tuple(GEOMETRIC) + COLOR
# Operations whose parameter is signed at random (+/-), as in the paper.
SIGNED = {
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Contrast",
    "Color",
    "Brightness",
    "Sharpness",
}


def magnitude_to_level(operation: str, magnitude: float) -> float:
    """The paper's 0-9 magnitude as the operation's (unsigned) parameter.

    Ranges of the paper's section 3 (Solarize [0, 256], Posterize [4, 8] bits,
    Shear [-0.3, 0.3], Translate [-150, 150] pixels of 331 = a fraction
    150/331 of the size, Rotate [-30, 30] degrees, the enhancement factors
    [0.1, 1.9]), discretised in 10 steps; larger magnitudes are stronger:
    Posterize keeps `round(8 - 4 m / 9)` bits, Solarize inverts values above
    `256 (1 - m / 9)`.
    """
    m = float(magnitude) / 9.0
    if operation in ("ShearX", "ShearY"):
        return 0.3 * m
    if operation in ("TranslateX", "TranslateY"):
        return 150.0 / 331.0 * m
    if operation == "Rotate":
        return 30.0 * m
    if operation in ("Contrast", "Color", "Brightness", "Sharpness"):
        return 0.9 * m  # factor 1 +/- level
    if operation == "Posterize":
        return float(round(8 - 4 * m))
    if operation == "Solarize":
        return 256.0 * (1.0 - m) / 255.0  # threshold on the [0, 1] scale
    return 0.0


def _check_policy(policy):
    if isinstance(policy, str):
        key = policy.lower()
        if key not in POLICIES:
            raise utils.invalid_value(
                "policy", "one of " + ", ".join(repr(k) for k in POLICIES), policy
            )
        return key, [[tuple(step) for step in sub] for sub in POLICIES[key]]
    expected = (
        "a policy name or a non-empty list of sub-policies, each a list of "
        "(operation, probability, magnitude) steps with an operation in "
        f"{', '.join(OPERATIONS)}, a probability in [0, 1] and a magnitude "
        "in [0, 9]"
    )
    try:
        subs = [[tuple(step) for step in sub] for sub in policy]
    except TypeError:
        raise utils.invalid_value("policy", expected, policy) from None
    if not subs or len({len(s) for s in subs}) != 1 or not subs[0]:
        raise utils.invalid_value("policy", expected, policy)
    for sub in subs:
        for step in sub:
            if (
                len(step) != 3
                or step[0] not in OPERATIONS
                or not 0 <= float(step[1]) <= 1
                or not 0 <= float(step[2]) <= 9
            ):
                raise utils.invalid_value("policy", expected, policy)
    config = [[[op, float(p), float(m)] for op, p, m in sub] for sub in subs]
    return config, [[(op, float(p), float(m)) for op, p, m in sub] for sub in subs]


@utils.register
class AutoAugment(AugmentationLayer):
    """Applies a published AutoAugment policy, one sub-policy drawn per image.

    AutoAugment (Cubuk et al. 2019) searched, with reinforcement learning,
    for augmentation policies that maximise validation accuracy. A policy is
    a list of 25 sub-policies; each sub-policy is two steps
    `(operation, probability, magnitude)`. For every image the layer draws one
    sub-policy uniformly; each of its steps is applied with its probability,
    at its magnitude (with a random sign for the signed operations). The
    three published policies (`layer.policies` holds the table, exactly as in
    the paper's appendix) are:

    - `"cifar10"`: mostly colour operations (Equalize, AutoContrast, Color,
      Brightness); the paper adds it to flips, pad-and-crop and Cutout.
    - `"imagenet"`: Posterize, Solarize, Equalize, Rotate and Color.
    - `"svhn"`: geometric (ShearX/Y) and Invert, which suit digits.

    The whole batch is processed at once, without a loop over images: per
    stage, the geometric step of every image is one batched affine transform
    (identity where not applied) and every pixel operation used by the policy
    is computed for the batch and selected per image. Images are processed
    on the `[0, 1]` scale of `value_range`; the fill colour of geometric
    operations is mid-gray, as in the paper. A custom `policy` (a list of
    sub-policies with the operations of `kerasreg.layers.auto_augment.OPERATIONS`)
    is accepted too. At inference the layer is the identity.

    On the TensorFlow backend a policy with geometric operations sets
    `supports_jit = False` (no XLA kernel for the projective transform), as
    Keras's `RandomRotation` does.

    Args:
        policy: `"cifar10"`, `"imagenet"`, `"svhn"` or a list of
            sub-policies. Defaults to `"imagenet"`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Image `(H, W, C)` or batch `(N, H, W, C)` with 1 or 3
            channels, integer or float, in `value_range`.
        training: Whether to augment. Defaults to `True` when called directly.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)`, `C` in {1, 3}.

    Output shape:
        Same as the input, in the compute dtype.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (4, 32, 32, 3)).astype("uint8")
    >>> layer = AutoAugment("cifar10", seed=0)
    >>> len(layer.policies)
    25
    >>> tuple(layer(images).shape)
    (4, 32, 32, 3)

    Reference:
        - [Cubuk et al., 2019](https://arxiv.org/abs/1805.09501),
          "AutoAugment: Learning Augmentation Strategies from Data".
    """

    def __init__(self, policy="imagenet", value_range=(0, 255), seed=None, **kwargs):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.policy, self.policies = _check_policy(policy)
        table = self.policies
        self._num_stages = len(table[0])
        ops_ids = [[OPERATIONS.index(op) + 1 for op, _, _ in sub] for sub in table]
        self._op_ids = np.array(ops_ids, "int32")
        self._probs = np.array([[p for _, p, _ in sub] for sub in table], "float32")
        self._levels = np.array(
            [[magnitude_to_level(op, m) for op, _, m in sub] for sub in table],
            "float32",
        )
        self._signed = np.array(
            [[op in SIGNED for op, _, _ in sub] for sub in table], "float32"
        )
        self._stage_ops = [
            sorted({op for op, _, _ in (sub[s] for sub in table)})
            for s in range(self._num_stages)
        ]
        has_geometric = any(op in GEOMETRIC for ops_ in self._stage_ops for op in ops_)
        self.supports_jit = not (
            has_geometric and keras.backend.backend() == "tensorflow"
        )

    def _check_input_shape(self, input_shape):
        shape = super()._check_input_shape(input_shape)
        if shape[-1] not in (None, 1, 3):
            raise ValueError(
                "`AutoAugment` expects 1- or 3-channel images. "
                f"Received: input shape={shape}"
            )
        return shape

    def augment(self, images):
        lo, hi = self.value_range
        x = (images - lo) / (hi - lo)
        n = ops.shape(x)[0]
        size = (x.shape[1], x.shape[2])
        seed = self.seed_generator
        which = keras.random.randint((n,), 0, len(self.policies), seed=seed)
        for stage in range(self._num_stages):
            op = ops.take(ops.convert_to_tensor(self._op_ids[:, stage]), which)
            prob = ops.take(ops.convert_to_tensor(self._probs[:, stage]), which)
            level = ops.take(ops.convert_to_tensor(self._levels[:, stage]), which)
            signed = ops.take(ops.convert_to_tensor(self._signed[:, stage]), which)
            apply = keras.random.uniform((n,), seed=seed) < prob
            sign = ops.where(keras.random.uniform((n,), seed=seed) < 0.5, -1.0, 1.0)
            op = ops.where(apply, op, 0)
            value = level * ops.where(signed > 0, sign, 1.0)
            names = self._stage_ops[stage]
            geometric = [name for name in names if name in GEOMETRIC]
            if geometric:
                kind = ops.zeros_like(op)
                for name in geometric:
                    kind = ops.where(
                        op == OPERATIONS.index(name) + 1, GEOMETRIC[name], kind
                    )
                transforms = image_ops.geometric_transforms(kind, value, size)
                moved = ops.image.affine_transform(
                    x,
                    transforms,
                    interpolation="bilinear",
                    fill_mode="constant",
                    fill_value=0.5,
                )
                x = ops.where(ops.reshape(kind > 0, (-1, 1, 1, 1)), moved, x)
            for name in names:
                if name in GEOMETRIC:
                    continue
                out = self._color_op(name, x, value)
                chosen = ops.reshape(op == OPERATIONS.index(name) + 1, (-1, 1, 1, 1))
                x = ops.where(chosen, ops.cast(out, x.dtype), x)
        return x * (hi - lo) + lo

    @staticmethod
    def _color_op(name, x, value):
        if name == "Invert":
            return image_ops.invert(x)
        if name == "AutoContrast":
            return image_ops.autocontrast(x)
        if name == "Equalize":
            return image_ops.equalize(x)
        if name == "Solarize":
            return image_ops.solarize(x, value)
        if name == "Posterize":
            return image_ops.posterize(x, value)
        factor = 1.0 + value
        if name == "Contrast":
            return image_ops.adjust_contrast(x, factor)
        if name == "Color":
            return image_ops.adjust_color(x, factor)
        if name == "Brightness":
            return image_ops.adjust_brightness(x, factor)
        return image_ops.adjust_sharpness(x, factor)

    def get_config(self):
        base_config = super().get_config()
        config = {"policy": self.policy}
        return {**base_config, **config}
