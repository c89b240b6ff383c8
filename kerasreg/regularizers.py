"""Weight regularization: the elastic net of the cs231n notes, and adding a
regularizer to a model that was built or loaded without one.

The cs231n notes on regularization ("Neural Networks Part 2: Setting up the
Data and the Loss") write the regularized loss as
`L = data loss + lambda * R(W)` with

    L2           R(W) = sum W**2                (weight decay)
    L1           R(W) = sum |W|
    elastic net  R(W) = sum beta * W**2 + |W|

`ElasticNet(strength, beta)` is `strength * sum(beta * W**2 + |W|)`, i.e.
`lambda = strength`. It equals Keras's `keras.regularizers.L1L2(l1=strength,
l2=strength * beta)`; it exists to speak the notes' parameterisation (one
overall strength, one L2/L1 mix). For plain L2 or L1 use Keras's
`keras.regularizers.L2` / `L1` / `L1L2`; for decoupled weight decay use the
optimizer's `weight_decay` argument (e.g. `keras.optimizers.AdamW`, or
`weight_decay=` on any Keras optimizer). kerasreg does not re-implement them.
Note that Keras's `L2(l2)` is `l2 * sum W**2`, whereas the notes' gradient
derivation uses `lambda / 2 * sum W**2`: `L2(l2)` corresponds to
`lambda = 2 * l2`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasreg import utils
from kerasreg._regularizer_slots import (
    KERNEL_REGULARIZER_SLOTS,
    NORMALIZATION_REGULARIZER_SLOTS,
)
from kerasreg._walk import is_leaf, walk_layers

__all__ = ["ElasticNet", "add_weight_regularization"]


@utils.register
class ElasticNet(keras.regularizers.Regularizer):
    """Elastic-net weight penalty in the form of the cs231n notes.

    `R(W) = strength * sum(beta * W**2 + |W|)`: `beta` sets how much the
    L2 term weighs relative to the L1 term, `strength` is the notes'
    `lambda`. Equivalent to `keras.regularizers.L1L2(l1=strength,
    l2=strength * beta)`.

    Args:
        strength: non-negative float, the overall weight `lambda` of the
            penalty in the loss. Defaults to `1e-4`.
        beta: non-negative float, the weight of the squared term relative to
            the absolute term. Defaults to `1.0`.

    Example:

    >>> reg = ElasticNet(strength=0.1, beta=2.0)
    >>> round(float(reg(np.array([[1.0, -2.0]], "float32"))), 6)
    1.3
    >>> layer = keras.layers.Dense(4, kernel_regularizer=reg)

    Reference:
        - [Zou & Hastie, 2005](https://doi.org/10.1111/j.1467-9868.2005.00503.x),
          "Regularization and variable selection via the elastic net".
    """

    def __init__(self, strength=1e-4, beta=1.0):
        self.strength = utils.check_float("strength", strength, 0.0)
        self.beta = utils.check_float("beta", beta, 0.0)

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        penalty = self.beta * ops.sum(ops.square(x)) + ops.sum(ops.absolute(x))
        return self.strength * penalty

    def get_config(self):
        return {"strength": self.strength, "beta": self.beta}


def _normalization_types():
    names = (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "SpectralNormalization",
    )
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


def _weight_name(variable) -> str:
    return (
        variable.path.split("/")[-1]
        if getattr(variable, "path", None)
        else (variable.name.split("/")[-1].split(":")[0])
    )


def add_weight_regularization(
    model,
    regularizer,
    include_biases: bool = False,
    include_normalization: bool = False,
):
    """Puts `regularizer` on every kernel of `model`, built or not.

    A very common request: adding L2 (or any penalty) to a model that was
    built or loaded without it. In Keras 3 a layer reads its
    `kernel_regularizer` attribute only when it creates its weights, so
    setting the attribute on a built layer changes nothing. This function
    therefore sets the regularizer on the *variables* themselves
    (`variable.regularizer`, which `model.losses` reads at every step) and
    on the layer attributes that serialize it (`kernel_regularizer`,
    `depthwise_regularizer`, ...), so that the penalty is in `model.losses`
    immediately, in the next `fit`, and in a saved-and-reloaded model. It
    works in place and returns the same model; a compiled model's cached
    train/test/predict functions are dropped so that the next `fit` traces
    the new loss.

    Regularized: every trainable weight of every non-normalization layer
    except biases (`kernel`, `depthwise_kernel`, `pointwise_kernel`,
    `recurrent_kernel`, `embeddings`, `LowRankDense`'s `u` and `v`, and any
    other non-bias weight of custom layers). With `include_biases=True`,
    biases too; with `include_normalization=True`, the scale and offset of
    normalization layers (`BatchNormalization`, `LayerNormalization`, ...).
    Layers are found through the public `.layers` lists (nested models
    included); a custom layer without one is handled through its
    `trainable_weights`, by weight name (`bias`; `gamma` and `beta` for
    normalization). A weight that already had a regularizer gets
    `regularizer` instead.
    Non-trainable weights are left alone. On a model that is not built
    yet, the layer attributes alone are set and take effect at build.

    For everything else use Keras: `keras.regularizers.L1`, `L2`, `L1L2` as
    `kernel_regularizer=` on the layers, or decoupled weight decay with an
    optimizer's `weight_decay=` argument.

    Args:
        model: a Keras model (or layer).
        regularizer: a `keras.regularizers.Regularizer`, its name
            (`"l2"`), or a config dict.
        include_biases: whether to regularize biases too.
            Defaults to `False`.
        include_normalization: whether to regularize normalization layers'
            weights too. Defaults to `False`.

    Returns:
        The same `model`, regularized.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> len(model.losses)
    0
    >>> model = add_weight_regularization(model, ElasticNet(1e-3, beta=1.0))
    >>> len(model.losses)
    1
    """
    reg = keras.regularizers.get(regularizer)
    if reg is None or not callable(reg):
        raise utils.invalid_value(
            "regularizer", "a keras.regularizers.Regularizer", regularizer
        )
    norm_types = _normalization_types()
    for layer in filter(is_leaf, walk_layers(model)):
        is_norm = isinstance(layer, norm_types)
        if is_norm and not include_normalization:
            continue
        # Layer attributes: used at build (unbuilt layers) and by get_config.
        for attr in _attributes_for(is_norm, include_biases):
            if hasattr(layer, attr):
                setattr(layer, attr, reg)
        # Variables of built layers: what `model.losses` actually reads.
        for variable in layer.trainable_weights:
            name = _weight_name(variable)
            if name == "bias" and not include_biases:
                continue
            # The scale / offset of a normalization nested in a custom layer
            # (one without a public `.layers` list) are found by name.
            if name in ("gamma", "beta") and not include_normalization:
                continue
            variable.regularizer = reg
    # Traced train/test/predict functions captured the old loss.
    for attr in ("train_function", "test_function", "predict_function"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    return model


def _attributes_for(is_norm: bool, include_biases: bool) -> list[str]:
    if is_norm:
        return list(NORMALIZATION_REGULARIZER_SLOTS)
    attrs = list(KERNEL_REGULARIZER_SLOTS)
    if include_biases:
        attrs.append("bias_regularizer")
    return attrs
