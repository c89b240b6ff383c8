"""The test toolkit every kerasreg layer and callback test reuses.

Layers:
    `check_layer(make_layer, x, tmp_path, ...)` runs the whole battery below;
    each check is also available on its own:
    - `assert_symbolic_matches_eager`: symbolic output shape == eager shape;
    - `assert_save_load_roundtrip`: `.keras` save/load with identical
      inference outputs and an identical config;
    - `assert_fit_step`: one compiled `fit` step (optionally `jit_compile=True`);
    - `assert_mixed_precision`: runs and trains under `mixed_float16`;
    - `assert_tf_data_map`: works as `ds.map(layer)` in a `tf.data` pipeline;
    - `assert_mirrored_strategy`: trains under `tf.distribute.MirroredStrategy`
      with two logical CPU devices (TensorFlow backend only).

Callbacks:
    - `run_scripted(callback, logs_per_epoch)`: drives the epoch hooks with
      scripted `logs` (NaN/inf allowed) and returns the epoch training
      stopped at (or None);
    - `assert_deepcopy_and_reuse`: a deep copy of the callback trains, and the
      same instance serves a second `fit`.

Data:
    - `images(...)`, `classification_data(...)`: tiny seeded arrays;
    - `cifar10_dir()`: the shared real CIFAR-10, or a clean skip when absent.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

requires_tensorflow = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="needs the TensorFlow backend"
)


def configure_logical_cpus(n: int = 2) -> None:
    """Splits the CPU into `n` logical devices (TensorFlow backend only).

    Must run before TensorFlow initialises its devices; a no-op afterwards.
    """
    if BACKEND != "tensorflow":
        return
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        pass  # Already initialised (e.g. by an earlier import); keep as is.


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------


def images(
    n: int = 8,
    height: int = 16,
    width: int = 16,
    channels: int = 3,
    *,
    dtype: str = "float32",
    value_range: tuple[float, float] = (0.0, 255.0),
    seed: int = 0,
) -> np.ndarray:
    """A seeded batch of random images in `value_range`."""
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    x = rng.uniform(lo, hi, size=(n, height, width, channels))
    if np.dtype(dtype).kind in "ui":
        x = np.round(x)
    return x.astype(dtype)


def classification_data(
    n: int = 64, features: int = 8, classes: int = 3, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, learnable classification problem (x float32, y int32)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0.0, 1.0, size=(n, features))
    return x.astype("float32"), y.astype("int32")


def cifar10_dir() -> Path:
    """The shared CIFAR-10 folder, or skips the test when it is absent.

    Looked up in `KERASREG_DATA_DIR`, then `../shared/data/cifar10` beside
    the checkout (a user's fresh clone has no `../shared`: the test skips).
    """
    candidates = []
    if os.environ.get("KERASREG_DATA_DIR"):
        candidates.append(Path(os.environ["KERASREG_DATA_DIR"]))
    root = Path(__file__).resolve().parents[1]
    candidates.append(root.parent / "shared" / "data" / "cifar10")
    for path in candidates:
        if (path / "train").is_dir() and (path / "test").is_dir():
            return path
    pytest.skip("real CIFAR-10 not available (no ../shared/data/cifar10)")


# ----------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------


def to_numpy(x):
    """Any backend's tensor (or array) as a NumPy array."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _layer_model(make_layer: Callable, x: np.ndarray, **call_kwargs):
    import keras

    inputs = keras.Input(shape=x.shape[1:], dtype=str(x.dtype))
    outputs = make_layer()(inputs, **call_kwargs)
    return keras.Model(inputs, outputs)


def _head_model(make_layer: Callable, x: np.ndarray, *, dtype_policy=None):
    """Input -> layer -> Flatten -> Dense(1): a trainable model around a layer."""
    import keras

    inputs = keras.Input(shape=x.shape[1:], dtype=str(x.dtype))
    h = make_layer()(inputs)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(1, dtype="float32")(h)
    return keras.Model(inputs, outputs)


def assert_symbolic_matches_eager(make_layer: Callable, x: np.ndarray, **call_kwargs):
    """The symbolic output shape agrees with the eager one (batch left free)."""
    import keras

    layer = make_layer()
    symbolic = layer(keras.Input(shape=x.shape[1:], dtype=str(x.dtype)), **call_kwargs)
    eager = to_numpy(layer(x, **call_kwargs))
    sym_shape = tuple(symbolic.shape)
    assert len(sym_shape) == eager.ndim, (sym_shape, eager.shape)
    for s, e in zip(sym_shape[1:], eager.shape[1:]):
        assert s is None or s == e, (sym_shape, eager.shape)
    return eager


def assert_config_roundtrip(layer) -> None:
    """`from_config(get_config())` rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def assert_save_load_roundtrip(
    make_layer: Callable,
    x: np.ndarray,
    tmp_path,
    *,
    compare_outputs: bool = True,
    atol: float = 1e-6,
):
    """`.keras` save/load keeps the config, the weights and inference outputs."""
    import keras

    model = _layer_model(make_layer, x)
    assert_config_roundtrip(model.layers[-1])
    expected = to_numpy(model(x, training=False))
    path = Path(tmp_path) / "roundtrip.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is type(model.layers[-1])
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    if compare_outputs:
        got = to_numpy(loaded(x, training=False))
        np.testing.assert_allclose(got, expected, atol=atol, rtol=1e-6)
    return loaded


def assert_fit_step(
    make_layer: Callable,
    x: np.ndarray,
    *,
    jit_compile: bool | str = False,
    batch_size: int = 4,
):
    """One epoch of a compiled `fit` through the layer gives a finite loss."""
    model = _head_model(make_layer, x)
    y = np.linspace(-1.0, 1.0, len(x)).astype("float32")[:, None]
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    assert all(math.isfinite(v) for v in history.history["loss"])
    preds = model.predict(x, batch_size=batch_size, verbose=0)
    assert np.all(np.isfinite(preds))
    return model


def assert_jit_compile(make_layer: Callable, x: np.ndarray, batch_size: int = 4):
    """Trains and predicts with `jit_compile=True` (XLA on TF, always on JAX)."""
    return assert_fit_step(make_layer, x, jit_compile=True, batch_size=batch_size)


def assert_mixed_precision(make_layer: Callable, x: np.ndarray, *, float_output=True):
    """Runs forward (training and inference) and trains under `mixed_float16`."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = make_layer()
        for training in (True, False):
            out = layer(x, training=training)
            if float_output:
                assert "float16" in str(out.dtype), out.dtype
            assert np.all(np.isfinite(to_numpy(out).astype("float32")))
        assert_fit_step(make_layer, x)
    finally:
        keras.config.set_dtype_policy(previous)


def assert_tf_data_map(make_layer: Callable, x: np.ndarray, *, batch_size: int = 4):
    """`ds.map(layer)` works in a `tf.data` pipeline; shapes match eager ones."""
    import tensorflow as tf

    layer = make_layer()
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    ds = ds.map(lambda t: layer(t, training=True))
    outs = [o.numpy() for o in ds]
    eager = to_numpy(make_layer()(x[:batch_size], training=True))
    assert outs[0].shape == eager.shape, (outs[0].shape, eager.shape)
    assert all(np.all(np.isfinite(o.astype("float64"))) for o in outs)
    return outs


@functools.cache
def mirrored_strategy():
    """The one two-replica `MirroredStrategy` of the test session (TF backend).

    Several collective-reducing strategies in one process number their
    collective instances from the same start and abort ("Shape mismatch in the
    collective instance ...") once gradients of other shapes meet, so every
    test shares this strategy, which reduces with `ReductionToOneDevice` (no
    collective ops) over the two logical CPU devices set up by conftest.
    """
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    assert strategy.num_replicas_in_sync == 2
    return strategy


def assert_mirrored_strategy(make_layer: Callable, x: np.ndarray, *, batch_size=4):
    """Trains and predicts under MirroredStrategy on two logical CPU devices."""
    if BACKEND != "tensorflow":
        pytest.skip("tf.distribute needs the TensorFlow backend")
    with mirrored_strategy().scope():
        model = assert_fit_step(make_layer, x, batch_size=batch_size)
    return model


def assert_weights_and_seed_state(
    make_layer: Callable,
    x: np.ndarray,
    *,
    trainable_weights: int | None = None,
    non_trainable_weights: int | None = None,
    seed_generators: int | None = None,
    inference_draws: bool = False,
) -> None:
    """Weight counts, and the seed generators' state, as Keras's layer tests do.

    After the first call builds the layer, later calls create no weights; the
    counts equal the expected ones where given. Each `SeedGenerator` the layer
    holds advances in a training call and stays put in an inference call
    (unless `inference_draws`, e.g. Monte-Carlo dropout).
    """
    import keras

    layer = make_layer()
    layer(x, training=False)
    counts = (len(layer.trainable_weights), len(layer.non_trainable_weights))
    layer(x, training=True)
    assert (len(layer.trainable_weights), len(layer.non_trainable_weights)) == counts
    if trainable_weights is not None:
        assert counts[0] == trainable_weights, counts
    if non_trainable_weights is not None:
        assert counts[1] == non_trainable_weights, counts
    generators = [
        v for v in vars(layer).values() if isinstance(v, keras.random.SeedGenerator)
    ]
    if seed_generators is not None:
        assert len(generators) == seed_generators, generators
    for generator in generators:
        before = to_numpy(generator.state)
        layer(x, training=False)
        after_inference = to_numpy(generator.state)
        if not inference_draws:
            np.testing.assert_array_equal(after_inference, before)
        layer(x, training=True)
        assert not np.array_equal(to_numpy(generator.state), after_inference)


def check_layer(
    make_layer: Callable,
    x: np.ndarray,
    tmp_path,
    *,
    compare_outputs: bool = True,
    tf_data: bool = False,
    mixed_precision: bool = True,
    float_output: bool = True,
    distributed: bool = True,
    batch_size: int = 4,
    trainable_weights: int | None = None,
    non_trainable_weights: int | None = None,
    seed_generators: int | None = None,
    inference_draws: bool = False,
) -> None:
    """The whole layer battery: shapes, weights and seeds, save/load, fit, XLA,
    fp16, tf.data, strategy."""
    assert_weights_and_seed_state(
        make_layer,
        x,
        trainable_weights=trainable_weights,
        non_trainable_weights=non_trainable_weights,
        seed_generators=seed_generators,
        inference_draws=inference_draws,
    )
    assert_symbolic_matches_eager(make_layer, x)
    assert_symbolic_matches_eager(make_layer, x, training=True)
    assert_save_load_roundtrip(make_layer, x, tmp_path, compare_outputs=compare_outputs)
    assert_fit_step(make_layer, x, batch_size=batch_size)
    assert_jit_compile(make_layer, x, batch_size=batch_size)
    if mixed_precision:
        assert_mixed_precision(make_layer, x, float_output=float_output)
    if tf_data:
        assert_tf_data_map(make_layer, x, batch_size=batch_size)
    if distributed and BACKEND == "tensorflow":
        assert_mirrored_strategy(make_layer, x, batch_size=batch_size)


# ----------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------


def tiny_model(features: int = 8, classes: int = 3, *, compile: bool = True):
    """A small softmax classifier for callback tests."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(features,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    if compile:
        model.compile(
            optimizer=keras.optimizers.SGD(0.05),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def run_scripted(
    callback,
    logs_per_epoch: Sequence[dict],
    *,
    model=None,
    batch_logs: Sequence[Sequence[dict]] | None = None,
) -> int | None:
    """Feeds scripted `logs` to a callback's hooks, as `fit` would.

    Returns the index of the epoch after which `model.stop_training` was set,
    or None if training ran through. `batch_logs[e]` (optional) lists the
    per-batch logs of epoch `e`; the batch loop also stops at `stop_training`.
    """
    model = model if model is not None else tiny_model()
    model.stop_training = False
    callback.set_model(model)
    callback.set_params({"epochs": len(logs_per_epoch), "verbose": 0, "steps": None})
    callback.on_train_begin({})
    stopped = None
    for epoch, logs in enumerate(logs_per_epoch):
        callback.on_epoch_begin(epoch, {})
        if batch_logs is not None:
            for batch, blogs in enumerate(batch_logs[epoch]):
                callback.on_train_batch_begin(batch, {})
                callback.on_train_batch_end(batch, dict(blogs))
                if model.stop_training:
                    break
        callback.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end({})
    return stopped


def assert_deepcopy_and_reuse(
    make_callback: Callable,
    *,
    make_model: Callable = tiny_model,
    epochs: int = 2,
    **fit_kwargs,
):
    """A deep copy of the callback trains, and serves a second `fit` too."""
    x, y = classification_data(64, 8, 3)
    original = make_callback()
    cb = copy.deepcopy(original)
    histories = []
    for _ in range(2):
        model = make_model()
        fit_kwargs.setdefault("validation_data", (x[:16], y[:16]))
        histories.append(
            model.fit(
                x,
                y,
                batch_size=16,
                epochs=epochs,
                verbose=0,
                callbacks=[cb],
                **fit_kwargs,
            )
        )
    assert len(histories[0].epoch) == len(histories[1].epoch)
    return cb, histories


# -- models and data for fit-robustness tests --------------------------------


def subclassed_classifier(hidden: int = 16, classes: int = 3):
    """A subclassed softmax classifier: it has no variables until called."""
    import keras

    class SubclassedNet(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(hidden, activation="relu")
            self.out = keras.layers.Dense(classes, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(x))

    return SubclassedNet()


def failing_data(x, y, batch_size: int = 8):
    """A `keras.utils.PyDataset` of `(x, y)` batches whose batch 1 raises
    `KeyboardInterrupt` (Ctrl-C inside a train step) while `.armed` is True,
    and a callback `arm_at(data, epoch)` that arms it during one epoch."""
    import keras

    class FailingData(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.armed = False

        def __len__(self):
            return len(x) // batch_size

        def __getitem__(self, i):
            if self.armed and i == 1:
                raise KeyboardInterrupt
            part = slice(i * batch_size, (i + 1) * batch_size)
            return x[part], y[part]

    return FailingData()


def arm_at(data, epoch: int):
    """A callback that arms `failing_data(...)` during epoch `epoch` only."""
    import keras

    class ArmAt(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            data.armed = e == epoch

    return ArmAt()


# ----------------------------------------------------------------------------
# Docstring examples
# ----------------------------------------------------------------------------


def assert_docstring_examples(target, *, name=None, globs=None) -> None:
    """Runs the `Example:` blocks of `target`'s docstrings as doctests.

    `target` is a module (every docstring in it) or one function or class. As
    in Keras's docstrings, the examples may assume `np`, `keras` and
    `kerasreg` are imported; a module's own names are in scope too. At least
    one example must run, and none may fail.
    """
    import doctest

    import keras

    import kerasreg

    name = name or getattr(target, "__name__", "target")
    scope = {"np": np, "keras": keras, "kerasreg": kerasreg}
    if isinstance(target, type(np)):  # a module
        scope.update(vars(target))
    scope.update(globs or {})
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    attempted = 0
    for test in doctest.DocTestFinder().find(target, name, globs=scope):
        if test.examples:
            result = runner.run(test)
            attempted += result.attempted
            assert result.failed == 0, f"docstring example failed in {test.name}"
    assert attempted > 0, f"no docstring example found in {name}"
