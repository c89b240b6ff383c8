"""`AugmentationLayer`: the base of kerasreg's image augmentation layers.

It does what every one of them needs: checks `value_range`, keeps the raw
`seed` and a `keras.random.SeedGenerator`, accepts a single image `(H, W, C)`
or a batch `(N, H, W, C)` of `uint8` or float pixels, casts to the compute
dtype, and calls `augment` (training) or `infer` (inference, identity by
default).

`tf.data` on every backend
--------------------------
Keras's own preprocessing layers run inside `tf.data` on the JAX and PyTorch
backends through a private base class that switches their ops to TensorFlow
for the duration of the call. kerasreg only uses the public API, so it does
this instead:

- On the TensorFlow backend nothing special happens: `keras.ops` *are*
  TensorFlow ops, the layer runs in the `tf.data` graph (parallel,
  prefetched, no Python). This is the fast path the benchmarks measure.
- On another backend, a call on a symbolic `tf.Tensor` (we are being traced
  by `ds.map`) is wrapped in `tf.numpy_function`: for each batch the layer
  runs on its own backend and hands back a NumPy array, with the static
  output shape restored. On JAX the call is one `jax.jit`-compiled
  `stateless_call` (compiled once per input shape; the seed state is written
  back, so the layer's seed stream is the same as outside `tf.data`); on
  other backends it is an eager call. Slower than the TensorFlow path (a
  Python call per batch), but exact.
- An eager `tf.Tensor` on another backend is converted to NumPy first.

This file is the only place that knows about TensorFlow (and JAX, imported
lazily when that is the backend), and it never imports TensorFlow: it looks for `tensorflow` in `sys.modules` (a `tf.Tensor` can only
exist if TensorFlow has been imported).
"""

from __future__ import annotations

import sys

import keras
import numpy as np
from keras import ops

from kerasreg import utils
from kerasreg.ops.crop import crop_and_resize


def tensorflow_of(x):
    """Returns the `tensorflow` module if `x` is a `tf.Tensor`, else None."""
    tf = sys.modules.get("tensorflow")
    if tf is None or isinstance(x, keras.KerasTensor):
        return None
    if isinstance(x, tf.Tensor):
        return tf
    return None


class AugmentationLayer(keras.Layer):
    """Base class for kerasreg's image augmentation layers.

    Subclasses implement `augment(images)` (a float batch `(N, H, W, C)` in
    the compute dtype and in `value_range`; random ops use
    `seed=self.seed_generator`) and optionally `infer(images)` and
    `compute_output_shape`. They are preprocessing layers: usable inside a
    model and in `tf.data` (`ds.map(layer)`) on every backend (see the module
    docstring).

    Args:
        value_range: `(min, max)` of the pixel values, e.g. `(0, 255)` for
            `uint8` images or `(0, 1)`. Defaults to `(0, 255)`.
        seed: Integer seed for reproducible randomness. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: An image `(H, W, C)` or batch `(N, H, W, C)`, integer or float.
        training: Whether to augment (`True`, the default as for Keras's
            preprocessing layers when called directly) or give the inference
            view. Inside `fit`/`predict` Keras sets it.
    """

    #: Number of channels the layer requires (None: any).
    required_channels: int | None = None

    def __init__(self, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.value_range = utils.check_range(
            "value_range", value_range, allow_equal=False
        )
        self.seed = utils.check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    # -- tf.data on every backend --------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        if keras.backend.backend() != "tensorflow":
            tf = tensorflow_of(inputs)
            if tf is not None:
                if not tf.executing_eagerly():
                    return self._call_through_numpy(tf, inputs, *args, **kwargs)
                inputs = inputs.numpy()
        return super().__call__(inputs, *args, **kwargs)

    def _call_through_numpy(self, tf, inputs, training=None, **kwargs):
        training = True if training is None else bool(training)
        layer_call = super().__call__

        def run(array):
            if keras.backend.backend() == "jax" and not kwargs:
                return self._jax_compiled_call(array, training)
            out = layer_call(array, training=training, **kwargs)
            return np.asarray(ops.convert_to_numpy(out))

        out = tf.numpy_function(
            run, [inputs], Tout=tf.as_dtype(self.compute_dtype), stateful=True
        )
        out.set_shape(self.compute_output_shape(tuple(inputs.shape)))
        return out

    def _jax_compiled_call(self, array, training):
        """One `jax.jit`-compiled stateless call; the seed state is written back.

        Eager JAX dispatches op by op; compiling the whole call (cached per
        input shape) makes the `tf.data` path on JAX far cheaper.
        """
        import jax

        if not self.built:
            self.build(tuple(array.shape))
        compiled = self.__dict__.setdefault("_jax_compiled", {})
        fn = compiled.get(training)
        if fn is None:

            def stateless(trainable, non_trainable, x):
                return self.stateless_call(
                    trainable, non_trainable, x, training=training
                )

            fn = compiled[training] = jax.jit(stateless)
        trainable = [v.value for v in self.trainable_variables]
        non_trainable = [v.value for v in self.non_trainable_variables]
        out, new_state = fn(trainable, non_trainable, array)
        for variable, value in zip(self.non_trainable_variables, new_state):
            variable.assign(value)
        return np.asarray(out)

    # -- common call logic ----------------------------------------------------

    def _check_input_shape(self, input_shape):
        # A check of our own, not `keras.InputSpec(min_ndim=3, max_ndim=4)`:
        # Keras checks a spec only in `__call__`, which a direct `build` and the
        # `stateless_call` of the JAX `tf.data` path skip, and its messages
        # (e.g. "expected max_ndim=4, found ndim=5") do not show the shape.
        shape = tuple(input_shape)
        if len(shape) not in (3, 4):
            raise ValueError(
                f"`{type(self).__name__}` expects images of shape (H, W, C) or a "
                f"batch (N, H, W, C). Received: input shape={shape}"
            )
        channels = shape[-1]
        if self.required_channels is not None and channels not in (
            None,
            self.required_channels,
        ):
            raise ValueError(
                f"`{type(self).__name__}` expects {self.required_channels}-channel "
                f"(RGB) images. Received: input shape={shape}"
            )
        return shape

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=True):
        self._check_input_shape(inputs.shape)
        x = ops.cast(inputs, self.compute_dtype)
        unbatched = len(x.shape) == 3
        if unbatched:
            x = ops.expand_dims(x, 0)
        out = self.augment(x) if training else self.infer(x)
        out = ops.cast(out, self.compute_dtype)
        if unbatched:
            out = ops.squeeze(out, 0)
        return out

    def augment(self, images):
        raise NotImplementedError

    def infer(self, images):
        return images

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        base_config = super().get_config()
        config = {"value_range": list(self.value_range), "seed": self.seed}
        return {**base_config, **config}


class _CropLayer(AugmentationLayer):
    """Base of the layers that crop one box per image, resized to a fixed size.

    Subclasses implement `sample_boxes(batch_size, image_size)` (a float
    tensor `(N, 4)` of `(top, left, height, width)` input pixels, drawn with
    `seed=self.seed_generator`) and `infer(images)`; the base checks the
    arguments, needs a static input height and width, and crops every image's
    box in one call of `kerasreg.ops.crop_and_resize`.

    Args:
        height: Output height.
        width: Output width.
        interpolation: `"bilinear"` or `"nearest"`. Defaults to `"bilinear"`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).
    """

    def __init__(
        self,
        height,
        width,
        interpolation="bilinear",
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.height = utils.check_int("height", height, 1)
        self.width = utils.check_int("width", width, 1)
        self.interpolation = utils.check_choice(
            "interpolation", interpolation, ("bilinear", "nearest")
        )

    def build(self, input_shape):
        shape = self._check_input_shape(input_shape)
        if shape[-3] is None or shape[-2] is None:
            raise ValueError(
                f"`{type(self).__name__}` needs a static image height and width. "
                f"Received: input shape={shape}"
            )
        super().build(input_shape)

    def sample_boxes(self, batch_size, image_size: tuple[int, int]):
        raise NotImplementedError

    def augment(self, images):
        boxes = self.sample_boxes(
            ops.shape(images)[0], (images.shape[1], images.shape[2])
        )
        return crop_and_resize(
            images, boxes, (self.height, self.width), self.interpolation
        )

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        return shape[:-3] + (self.height, self.width, shape[-1])

    def get_config(self):
        base_config = super().get_config()
        config = {
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
        }
        return {**base_config, **config}
