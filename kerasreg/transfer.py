"""Transfer learning: freezing, unfreezing, the 2x2 strategy table, fine-tuning.

A network trained on a large dataset is a feature extractor for a new task
(Donahue et al., DeCAF, 2014; Razavian et al., "CNN Features off-the-shelf",
2014). How much of it to retrain depends on how much data the new task has
and how close it is to the original one (cs231n's table):

|                     | very similar dataset           | very different dataset                          |
| ------------------- | ------------------------------ | ----------------------------------------------- |
| very little data    | linear classifier on top layer | linear classifiers from different stages        |
| quite a lot of data | fine-tune a few layers         | fine-tune a larger number of layers             |

Freezing in Keras 3: a layer with `trainable = False` is not updated by
`fit`, and a frozen `BatchNormalization` layer also runs in inference mode
(it normalises with its moving statistics and leaves them unchanged, even
when called with `training=True`), which is what fine-tuning wants. Changing
`trainable` only takes effect in `fit` after `compile` is called again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerasreg import utils
from kerasreg._batches import fit_arguments
from kerasreg._walk import walk_layers

__all__ = [
    "FineTuneResult",
    "Strategy",
    "STRATEGIES",
    "fine_tune",
    "freeze",
    "leaf_layers",
    "linear_probe_model",
    "recommend_strategy",
    "unfreeze_top",
]


def _is_model(layer) -> bool:
    return isinstance(layer, keras.Model)


def leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `model` in order, nested models expanded, inputs left out.

    A layer shared by two nested models is listed once.
    """
    return [
        layer
        for layer in walk_layers(model, expand=_is_model)
        if not isinstance(layer, (keras.Model, keras.layers.InputLayer))
    ]


def _containers(model: keras.Model) -> list[keras.Model]:
    """`model` and every model nested in it."""
    return [layer for layer in walk_layers(model, expand=_is_model) if _is_model(layer)]


def _enable_containers(model: keras.Model) -> None:
    """Makes every (nested) model trainable without changing its leaves.

    Setting `trainable` on a model cascades to all its layers, so the leaf
    flags are recorded first and restored afterwards.
    """
    leaves = leaf_layers(model)
    states = [layer.trainable for layer in leaves]
    for container in _containers(model):
        if not container.trainable:
            container.trainable = True
    for layer, state in zip(leaves, states):
        layer.trainable = state


def _resolve(layers: list, up_to: int | str, name: str = "up_to") -> int:
    names = [layer.name for layer in layers]
    if isinstance(up_to, str):
        if up_to not in names:
            raise utils.invalid_value(
                name, f"the name of one of the model's layers {names}", up_to
            )
        return names.index(up_to)
    index = utils.check_int(name, up_to, -len(layers), len(layers) - 1)
    return index % len(layers)


def freeze(model: keras.Model, up_to: int | str | None = None) -> list:
    """Freezes the layers of `model` from the input up to `up_to` (included).

    Layers of nested models count one by one (see `leaf_layers`). Frozen
    `BatchNormalization` layers run in inference mode: their moving mean and
    variance stay as they are, even in `fit` or when called with
    `training=True`. Re-compile the model for the change to reach `fit`.

    Args:
        model: a built Keras model.
        up_to: the last layer to freeze: its name, or its index among
            `leaf_layers(model)` (negative indices count from the top).
            Defaults to `None` (freeze every layer).

    Returns:
        The list of the layers frozen.

    Example:

    >>> import keras, kerasreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...     keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    >>> frozen = kerasreg.transfer.freeze(model, up_to=-2)
    >>> [layer.trainable for layer in model.layers]
    [False, False, True]
    """
    layers = leaf_layers(model)
    if not layers:
        raise ValueError("The model has no layers to freeze.")
    stop = len(layers) - 1 if up_to is None else _resolve(layers, up_to)
    frozen = layers[: stop + 1]
    for layer in frozen:
        layer.trainable = False
    return frozen


def unfreeze_top(
    model: keras.Model, n: int, *, include_batchnorm: bool = False
) -> list:
    """Makes the top `n` layers with weights trainable again.

    Counting starts from the output and only counts layers that hold
    weights (activations, pooling or dropout layers in between are not
    counted). `BatchNormalization` layers are skipped and stay frozen, in
    inference mode, unless `include_batchnorm=True`: with small fine-tuning
    batches their statistics would drift away from the pretrained ones.
    Layers below the top `n` keep their current state. Re-compile the model
    for the change to reach `fit`.

    Args:
        model: a built Keras model.
        n: the number of layers with weights to unfreeze, from the top.
        include_batchnorm: whether `BatchNormalization` layers are unfrozen
            (and counted) too. Defaults to `False`.

    Returns:
        The list of the layers made trainable.

    Example:

    >>> import keras, kerasreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...     keras.layers.Dense(8), keras.layers.Dense(2)])
    >>> _ = kerasreg.transfer.freeze(model)
    >>> [l.name for l in kerasreg.transfer.unfreeze_top(model, 2)] == [
    ...     model.layers[1].name, model.layers[2].name]
    True
    """
    n = utils.check_int("n", n, 0)
    chosen = []
    for layer in reversed(leaf_layers(model)):
        if len(chosen) == n:
            break
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and not include_batchnorm:
            continue
        chosen.append(layer)
    chosen.reverse()
    _enable_containers(model)
    for layer in chosen:
        layer.trainable = True
    return chosen


@dataclasses.dataclass(frozen=True)
class Strategy:
    """One cell of the transfer-learning table.

    Attributes:
        key: `"linear_probe"`, `"multi_depth_probe"`, `"fine_tune_few"` or
            `"fine_tune_many"`.
        little_data: whether the new task has very little data.
        similar_domain: whether it is close to the pretraining task.
        action: what to do, in the words of the table.
        how: how to do it with `kerasreg.transfer`.
    """

    key: str
    little_data: bool
    similar_domain: bool
    action: str
    how: str

    def __str__(self) -> str:
        return f"{self.action} ({self.how})"


STRATEGIES = {
    (True, True): Strategy(
        "linear_probe",
        True,
        True,
        "use a linear classifier on the top layer",
        "freeze the network; `linear_probe_model(model, [top_feature_layer], C)`",
    ),
    (True, False): Strategy(
        "multi_depth_probe",
        True,
        False,
        "you're in trouble: try linear classifiers from different stages",
        "freeze the network; `linear_probe_model(model, [early, middle, top], C)` "
        "on features pooled from several depths",
    ),
    (False, True): Strategy(
        "fine_tune_few",
        False,
        True,
        "fine-tune a few layers",
        "`fine_tune(model, data, unfreeze=1..2)`: linear probe, then the top "
        "layers at a lower learning rate",
    ),
    (False, False): Strategy(
        "fine_tune_many",
        False,
        False,
        "fine-tune a larger number of layers",
        "`fine_tune(model, data, unfreeze=most layers)` at a lower learning rate",
    ),
}


def recommend_strategy(
    n_examples: int, similar_domain: bool, *, little_data: int = 1000
) -> Strategy:
    """The transfer-learning strategy of the classic 2x2 table.

    "Very little data" means fewer than `little_data` labelled examples in
    total for the new task (default 1,000: around 100 per class for a
    10-class task, too few to fine-tune many convolutional layers without
    overfitting). It is a rule of thumb, not a law: with many classes or
    high-resolution inputs, raise it.

    Args:
        n_examples: the number of labelled training examples of the new task.
        similar_domain: whether the new task resembles the pretraining data.
        little_data: the number of examples below which the data counts as
            "very little". Defaults to `1000`.

    Returns:
        A `Strategy`.

    Example:

    >>> import kerasreg
    >>> kerasreg.transfer.recommend_strategy(50, similar_domain=True).key
    'linear_probe'
    >>> kerasreg.transfer.recommend_strategy(50_000, False).key
    'fine_tune_many'
    """
    n_examples = utils.check_int("n_examples", n_examples, 1)
    little_data = utils.check_int("little_data", little_data, 1)
    similar_domain = utils.check_bool("similar_domain", similar_domain)
    return STRATEGIES[(n_examples < little_data, similar_domain)]


def linear_probe_model(
    model: keras.Model,
    layers: Sequence[str | int],
    num_classes: int,
    *,
    activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """A linear classifier on frozen features from one or several depths.

    Each chosen layer's output is pooled to a vector
    (`GlobalAveragePooling` over the spatial axes of feature maps, `Flatten`
    otherwise); the vectors are concatenated and a single `Dense` layer
    classifies them. The layers of `model` are frozen (shared, not copied).
    With one top layer this is the "linear classifier on top"; with layers
    from several stages, the "linear classifiers from different stages" of
    the table, as one classifier over all the stages.

    Args:
        model: a built Functional or Sequential model (the pretrained one).
        layers: the layers whose outputs feed the classifier, by name or by
            index in `model.layers`.
        num_classes: the number of classes of the new task.
        activation: the classifier's activation. Defaults to `"softmax"`.
        name: the new model's name. Defaults to `None`.

    Returns:
        An uncompiled `keras.Model` from the inputs of `model` to the class
        scores.
    """
    num_classes = utils.check_int("num_classes", num_classes, 1)
    if not layers:
        raise utils.invalid_value("layers", "a non-empty list of layers", layers)
    freeze(model)
    features = []
    for ref in layers:
        layer = model.get_layer(ref) if isinstance(ref, str) else model.layers[ref]
        out = layer.output
        if len(out.shape) == 4:
            out = keras.layers.GlobalAveragePooling2D()(out)
        elif len(out.shape) == 3:
            out = keras.layers.GlobalAveragePooling1D()(out)
        elif len(out.shape) > 4:
            out = keras.layers.Flatten()(out)
        features.append(out)
    h = features[0] if len(features) == 1 else keras.layers.Concatenate()(features)
    outputs = keras.layers.Dense(num_classes, activation=activation)(h)
    return keras.Model(model.inputs, outputs, name=name)


@dataclasses.dataclass
class FineTuneResult:
    """The histories of `fine_tune`'s two stages.

    Attributes:
        probe: the `History` of the linear-probe stage.
        fine_tune: the `History` of the fine-tuning stage, or None when it
            did not run.
        unfrozen: the names of the layers trained in the second stage.
    """

    probe: Any
    fine_tune: Any
    unfrozen: list[str]


def _make_optimizer(optimizer: str | Callable, learning_rate: float):
    if callable(optimizer) and not isinstance(optimizer, str):
        return optimizer(learning_rate)
    return keras.optimizers.get(
        {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
    )


def fine_tune(
    model: keras.Model,
    data: Any,
    *,
    validation_data: Any = None,
    head_layers: int = 1,
    unfreeze: int = 2,
    probe_epochs: int = 5,
    fine_tune_epochs: int = 5,
    learning_rate: float = 1e-3,
    fine_tune_factor: float = 0.1,
    optimizer: str | Callable = "adam",
    loss: Any = "sparse_categorical_crossentropy",
    metrics: Sequence[Any] = ("accuracy",),
    batch_size: int | None = 32,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
) -> FineTuneResult:
    """Fine-tunes a pretrained model with a new head, in two stages.

    1. **Linear probe**: every layer is frozen except the new head (the top
       `head_layers` layers with weights), which is trained for
       `probe_epochs` at `learning_rate`. Training the head first keeps its
       large, random gradients from wrecking the pretrained features.
    2. **Fine-tuning**: the top `unfreeze` layers below the head are
       unfrozen too (`BatchNormalization` stays frozen, in inference mode)
       and the model trains for `fine_tune_epochs` at
       `learning_rate * fine_tune_factor`, with a fresh optimizer.

    The model is compiled by this function (the loss, metrics and
    optimizers given here) and trained in place.

    Args:
        model: the pretrained network with its new head on top.
        data: the training data: a tuple `(x, y)` or a dataset yielding
            batches (`batch_size` is then ignored).
        validation_data: passed to `fit`. Defaults to `None`.
        head_layers: the number of top layers with weights that form the
            new head. Defaults to `1`.
        unfreeze: the number of layers with weights below the head to
            fine-tune in stage 2 (`0` skips stage 2). Defaults to `2`.
        probe_epochs: the epochs of stage 1. Defaults to `5`.
        fine_tune_epochs: the epochs of stage 2. Defaults to `5`.
        learning_rate: the learning rate of stage 1. Defaults to `1e-3`.
        fine_tune_factor: the learning rate of stage 2 relative to stage 1.
            Defaults to `0.1`.
        optimizer: an optimizer name, or a function from a learning rate to
            a new optimizer. Defaults to `"adam"`.
        loss: the loss. Defaults to `"sparse_categorical_crossentropy"`.
        metrics: the metrics. Defaults to `("accuracy",)`.
        batch_size: the batch size for array data. Defaults to `32`.
        callbacks: callbacks for both stages. Defaults to `None`.
        verbose: the verbosity of `fit`. Defaults to `0`.

    Returns:
        A `FineTuneResult` with the two histories.

    Example:

    >>> import numpy as np, keras, kerasreg
    >>> base = keras.Sequential([keras.Input((8,)),
    ...     keras.layers.Dense(16, activation="relu")])
    >>> model = keras.Sequential([base, keras.layers.Dense(3, activation="softmax")])
    >>> x = np.random.rand(32, 8).astype("float32"); y = np.arange(32) % 3
    >>> result = kerasreg.transfer.fine_tune(model, (x, y), probe_epochs=1,
    ...     fine_tune_epochs=1, unfreeze=1)
    >>> result.unfrozen == [base.layers[0].name]
    True

    Reference:
        - [Yosinski et al., How transferable are features in deep neural
          networks?, NeurIPS 2014](https://arxiv.org/abs/1411.1792)
        - [Kumar et al., Fine-Tuning can Distort Pretrained Features,
          ICLR 2022](https://arxiv.org/abs/2202.10054) (linear probe, then
          fine-tune)
    """
    head_layers = utils.check_int("head_layers", head_layers, 1)
    unfreeze = utils.check_int("unfreeze", unfreeze, 0)
    probe_epochs = utils.check_int("probe_epochs", probe_epochs, 0)
    fine_tune_epochs = utils.check_int("fine_tune_epochs", fine_tune_epochs, 0)
    learning_rate = utils.check_float(
        "learning_rate", learning_rate, 0.0, low_inclusive=False
    )
    fine_tune_factor = utils.check_float(
        "fine_tune_factor", fine_tune_factor, 0.0, low_inclusive=False
    )
    with_weights = [layer for layer in leaf_layers(model) if layer.weights]
    if head_layers > len(with_weights):
        raise utils.invalid_value(
            "head_layers",
            f"at most the number of layers with weights ({len(with_weights)})",
            head_layers,
        )
    fit_args = fit_arguments(data, batch_size)
    fit_args.update(
        validation_data=validation_data,
        callbacks=list(callbacks or []),
        verbose=verbose,
    )

    freeze(model)
    unfreeze_top(model, head_layers)
    model.compile(
        optimizer=_make_optimizer(optimizer, learning_rate),
        loss=loss,
        metrics=list(metrics),
    )
    probe = model.fit(epochs=probe_epochs, **fit_args) if probe_epochs else None

    tuned, unfrozen = None, []
    if unfreeze and fine_tune_epochs:
        layers = unfreeze_top(model, head_layers + unfreeze)
        head_names = {layer.name for layer in with_weights[-head_layers:]}
        unfrozen = [layer.name for layer in layers if layer.name not in head_names]
        model.compile(
            optimizer=_make_optimizer(optimizer, learning_rate * fine_tune_factor),
            loss=loss,
            metrics=list(metrics),
        )
        tuned = model.fit(epochs=fine_tune_epochs, **fit_args)
    return FineTuneResult(probe, tuned, unfrozen)
