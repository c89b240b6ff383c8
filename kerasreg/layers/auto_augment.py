"""AutoAugment: the learned augmentation policies of Cubuk et al. (2019)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasreg import utils
from kerasreg.layers.augmentation_layer import AugmentationLayer
from kerasreg.ops import auto_augment as augment_ops

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

# Geometric operations: their id for `augment_ops._geometric_transforms`.
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
# Operations without a parameter (their magnitude is unused).
UNPARAMETERISED = {"Invert", "AutoContrast", "Equalize"}
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

    Only what each image draws is computed. On TensorFlow the images of a
    batch are grouped by operation, per stage: each operation runs once, on
    its group only (all geometric operations together, as one affine
    transform with per-image matrices). On other backends, where XLA fuses
    element-wise work, each stage is a few whole-batch expressions with
    per-image factors (the linear colour operations as one
    `a * x + b + c * gray + d * smooth`, Invert and Solarize as one
    threshold). Both give the outputs of computing every operation for the
    whole batch and selecting per image (`reference_augment`), under the same
    seed. Images are processed on the `[0, 1]` scale of `value_range`; the
    fill colour of geometric operations is mid-gray, as in the paper. A
    custom `policy` (a list of sub-policies with the operations of
    `kerasreg.layers.auto_augment.OPERATIONS`) is accepted too. At inference
    the layer is the identity. An empty batch passes through; Sharpness
    leaves images with fewer than 3 rows or columns unchanged (they are all
    border, which PIL's filter keeps).

    On the TensorFlow backend the layer sets `supports_jit = False` (groups
    of run-time size, and no XLA kernel for the projective transform), as
    Keras's `RandomRotation` does: a model compiled with `jit_compile=True`
    then runs without XLA.

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
        # On TensorFlow the images are grouped by operation (groups of run-time
        # size, which XLA cannot compile; nor the projective transform).
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def _check_input_shape(self, input_shape):
        shape = super()._check_input_shape(input_shape)
        if shape[-1] not in (None, 1, 3):
            raise ValueError(
                "`AutoAugment` expects 1- or 3-channel images. "
                f"Received: input shape={shape}"
            )
        return shape

    def augment(self, images):
        if images.shape[0] == 0:  # a static empty batch passes through
            return images
        lo, hi = self.value_range
        # To the [0, 1] scale and back, without a pass for a zero offset.
        x = images / (hi - lo) if lo == 0 else (images - lo) / (hi - lo)
        which, draws = self._draw(ops.shape(x)[0])
        for stage, (op, value) in enumerate(draws):
            if keras.backend.backend() == "tensorflow":
                x = self._stage_grouped(stage, x, op, value)
            else:
                x = self._stage_fused(stage, x, op, value)
        return x * (hi - lo) if lo == 0 else x * (hi - lo) + lo

    def _draw(self, n):
        """Per image: the sub-policy, then per stage the op id and its value.

        The op id is 0 where the step is not applied; the value is the signed
        level. All of it comes from one uniform draw `(n, 1 + 2 * stages)`
        (the sub-policy, then per stage the "applied" and the sign variates):
        one draw keeps the per-batch graph small, which matters in
        `tf.data`. `reference_augment` uses the same draws.
        """
        num = len(self.policies)
        u = keras.random.uniform(
            (n, 1 + 2 * self._num_stages), seed=self.seed_generator
        )
        which = ops.minimum(ops.cast(ops.floor(u[:, 0] * num), "int32"), num - 1)
        draws = []
        for stage in range(self._num_stages):
            op = ops.take(ops.convert_to_tensor(self._op_ids[:, stage]), which)
            prob = ops.take(ops.convert_to_tensor(self._probs[:, stage]), which)
            level = ops.take(ops.convert_to_tensor(self._levels[:, stage]), which)
            signed = ops.take(ops.convert_to_tensor(self._signed[:, stage]), which)
            apply = u[:, 1 + 2 * stage] < prob
            sign = ops.where(u[:, 2 + 2 * stage] < 0.5, -1.0, 1.0)
            op = ops.where(apply, op, 0)
            value = level * ops.where(signed > 0, sign, 1.0)
            draws.append((op, value))
        return which, draws

    def _stage_grouped(self, stage, x, op, value):
        """One stage with the images grouped by operation (dynamic shapes).

        The images are sorted by their operation; each operation runs once,
        on its contiguous group only (an empty group costs no pixel work), all
        geometric operations as one affine transform with per-image
        matrices; the inverse permutation puts the images back in order.
        The work is that of the operations the images drew.
        """
        names = self._stage_ops[stage]
        geometric = [name for name in names if name in GEOMETRIC]
        colour = [name for name in names if name not in GEOMETRIC]
        # Group 0: unchanged, then the geometric group, then one per colour op.
        group_of = np.zeros(len(OPERATIONS) + 1, "int32")
        kind_of = np.zeros(len(OPERATIONS) + 1, "int32")
        for name in geometric:
            group_of[OPERATIONS.index(name) + 1] = 1
            kind_of[OPERATIONS.index(name) + 1] = GEOMETRIC[name]
        first = 2 if geometric else 1
        for j, name in enumerate(colour):
            group_of[OPERATIONS.index(name) + 1] = first + j
        num_groups = first + len(colour)
        group = ops.take(ops.convert_to_tensor(group_of), op)
        order = ops.argsort(group)
        counts = ops.sum(ops.one_hot(group, num_groups, dtype="int32"), axis=0)
        ends = ops.cumsum(counts)
        # Per image: the value, then (geometric policies) the affine matrix,
        # computed for the whole batch (small) and sorted with the images.
        params = ops.expand_dims(ops.cast(value, "float32"), 1)
        if geometric:
            kind = ops.take(ops.convert_to_tensor(kind_of), op)
            size = (x.shape[1], x.shape[2])
            matrices = augment_ops._geometric_transforms(kind, value, size)
            params = ops.concatenate([params, matrices], axis=1)
        xs = ops.take(x, order, axis=0)
        params = ops.take(params, order, axis=0)
        pieces = [xs[: ends[0]]]
        for g in range(1, num_groups):
            start, end = ends[g - 1], ends[g]
            sub = xs[start:end]
            if g == 1 and geometric:
                out = self._affine(sub, params[start:end, 1:])
            else:
                name = colour[g - first]
                v = None if name in UNPARAMETERISED else params[start:end, 0]
                out = self._color_op(name, sub, v)
            pieces.append(ops.cast(out, sub.dtype))
        out = ops.concatenate(pieces, axis=0)
        return ops.take(out, ops.argsort(order), axis=0)

    def _stage_fused(self, stage, x, op, value):
        """One stage as a few whole-batch expressions with per-image factors.

        For compilers that fuse element-wise work (XLA, always used on JAX):
        one affine transform for the geometric ops; the linear colour ops
        (AutoContrast, Brightness, Contrast, Color, Sharpness) as one
        `a * x + b + c * gray + d * smooth` with per-image (and per-channel)
        coefficients; Invert and Solarize as one per-image threshold;
        Posterize and Equalize selected per image.
        """
        names = self._stage_ops[stage]
        ids = {name: OPERATIONS.index(name) + 1 for name in names}
        size = (x.shape[1], x.shape[2])

        def is_(name):
            return op == ids[name] if name in ids else ops.zeros_like(op, "bool")

        def per_image(t):
            return ops.reshape(ops.cast(t, x.dtype), (-1, 1, 1, 1))

        geometric = [name for name in names if name in GEOMETRIC]
        if geometric:
            kind = ops.zeros_like(op)
            for name in geometric:
                kind = ops.where(is_(name), GEOMETRIC[name], kind)
            moved = self._geometric(x, kind, value, size)
            x = ops.where(ops.reshape(kind > 0, (-1, 1, 1, 1)), moved, x)
        y = x
        linear = [
            name
            for name in ("AutoContrast", "Brightness", "Contrast", "Color", "Sharpness")
            if name in ids
        ]
        if linear:
            factor = per_image(1.0 + value)
            blend = ops.zeros_like(factor)  # the blends clip to [0, 1]
            a = ops.ones_like(factor)
            b = ops.zeros_like(factor)
            for name in ("Brightness", "Contrast", "Color", "Sharpness"):
                if name in ids:
                    chosen = per_image(is_(name))
                    a = a + chosen * (factor - 1.0)
                    blend = blend + chosen
            if "Contrast" in ids:
                mean = ops.mean(augment_ops.grayscale(x), axis=(1, 2, 3), keepdims=True)
                b = b + per_image(is_("Contrast")) * (1.0 - factor) * mean
            if "AutoContrast" in ids:
                lo = ops.min(x, axis=(1, 2), keepdims=True)
                span = ops.max(x, axis=(1, 2), keepdims=True) - lo
                stretch = ops.logical_and(
                    ops.reshape(is_("AutoContrast"), (-1, 1, 1, 1)), span > 0
                )
                safe = ops.where(stretch, span, ops.ones_like(span))
                a = ops.where(stretch, 1.0 / safe, a)
                b = ops.where(stretch, -lo / safe, b)
            y = a * x + b
            if "Color" in ids and x.shape[-1] != 1:
                gray = augment_ops.grayscale(x)
                y = y + per_image(is_("Color")) * (1.0 - factor) * gray
            elif "Color" in ids:
                y = y + per_image(is_("Color")) * (1.0 - factor) * x
            if "Sharpness" in ids:
                smooth = augment_ops._sharpness_degenerate(x)
                y = y + per_image(is_("Sharpness")) * (1.0 - factor) * smooth
            y = ops.where(blend > 0, ops.clip(y, 0.0, 1.0), y)
        if "Invert" in ids or "Solarize" in ids:
            threshold = ops.where(is_("Invert"), -np.inf, np.inf)
            threshold = ops.where(is_("Solarize"), value, threshold)
            y = ops.where(x >= per_image(threshold), 1.0 - x, y)
        if "Posterize" in ids:
            chosen = ops.reshape(is_("Posterize"), (-1, 1, 1, 1))
            y = ops.where(chosen, augment_ops.posterize(x, value), y)
        if "Equalize" in ids:
            chosen = ops.reshape(is_("Equalize"), (-1, 1, 1, 1))
            y = ops.where(chosen, augment_ops.equalize(x), y)
        return ops.cast(y, x.dtype)

    @staticmethod
    def _geometric(x, kind, value, size):
        transforms = augment_ops._geometric_transforms(kind, value, size)
        return AutoAugment._affine(x, transforms)

    @staticmethod
    def _affine(x, transforms):
        moved = ops.image.affine_transform(
            x,
            transforms,
            interpolation="bilinear",
            fill_mode="constant",
            fill_value=0.5,
        )
        return ops.cast(moved, x.dtype)

    @staticmethod
    def _color_op(name, x, value):
        if name == "Invert":
            return augment_ops.invert(x)
        if name == "AutoContrast":
            return augment_ops.autocontrast(x)
        if name == "Equalize":
            return augment_ops.equalize(x)
        if name == "Solarize":
            return augment_ops.solarize(x, value)
        if name == "Posterize":
            return augment_ops.posterize(x, value)
        factor = 1.0 + value
        if name == "Contrast":
            return augment_ops.adjust_contrast(x, factor)
        if name == "Color":
            return augment_ops.adjust_color(x, factor)
        if name == "Brightness":
            return augment_ops.adjust_brightness(x, factor)
        return augment_ops.adjust_sharpness(x, factor)

    def get_config(self):
        base_config = super().get_config()
        config = {"policy": self.policy}
        return {**base_config, **config}


def reference_augment(layer: AutoAugment, images):
    """The original, select-everything implementation of `AutoAugment.augment`.

    Per stage, every operation of the policy is computed for the whole batch
    and selected per image. Slow (the work of all the policy's operations for
    every image) but simple: the tests check the layer against it under the
    same seed, and `benchmarks/augmentation_benchmark.py` times it. It draws
    the same random numbers, in the same order, as the layer.
    """
    lo, hi = layer.value_range
    x = (images - lo) / (hi - lo)
    size = (x.shape[1], x.shape[2])
    _, draws = layer._draw(ops.shape(x)[0])
    for stage, (op, value) in enumerate(draws):
        names = layer._stage_ops[stage]
        geometric = [name for name in names if name in GEOMETRIC]
        if geometric:
            kind = ops.zeros_like(op)
            for name in geometric:
                kind = ops.where(
                    op == OPERATIONS.index(name) + 1, GEOMETRIC[name], kind
                )
            moved = layer._geometric(x, kind, value, size)
            x = ops.where(ops.reshape(kind > 0, (-1, 1, 1, 1)), moved, x)
        for name in names:
            if name in GEOMETRIC:
                continue
            out = layer._color_op(name, x, value)
            chosen = ops.reshape(op == OPERATIONS.index(name) + 1, (-1, 1, 1, 1))
            x = ops.where(chosen, ops.cast(out, x.dtype), x)
    return x * (hi - lo) + lo
