"""Ready-made augmentation pipelines: one recipe per kind of image.

`pipeline(task, strength)` returns a `keras.Sequential` of augmentation
layers chosen for a kind of image (Keras's own and kerasreg's). The layers
themselves live in `kerasreg.layers` (beside Keras's in `keras.layers`), and
test-time augmentation is `kerasreg.TestTimeAugmentation`.
"""

from __future__ import annotations

import keras

from kerasreg import utils
from kerasreg.layers.augmentation_layer import tensorflow_of
from kerasreg.layers.pca_color_augmentation import PCAColorAugmentation
from kerasreg.layers.random_pixel_noise import RandomPixelNoise

__all__ = ["TASKS", "AugmentationPipeline", "pipeline"]

#: The tasks `pipeline` knows, with the one-line reason for their recipe.
TASKS = {
    "natural": "photos of objects/scenes: mirror left-right, shift, PCA colour",
    "digits": "handwritten or printed digits: no flips, small rotate/shift/zoom",
    "text": "document or text crops: no flips, tiny rotate/shift, scan noise",
    "aerial": "overhead/satellite/microscopy: any flip, any rotation, colour",
}


# Not `keras.layers.Pipeline` (public since Keras 3.6): with Keras 3.15 it runs
# these layers in `tf.data` on TensorFlow and JAX, takes an image or a batch
# and saves, but it is not a `keras.Sequential` (no `add`/`pop`), which
# `pipeline` returns and its tests assert, and pipelines saved as
# `kerasreg>AugmentationPipeline` must still load.
@utils.register
class AugmentationPipeline(keras.Sequential):
    """A `keras.Sequential` of augmentation layers that also runs in `tf.data`.

    Inside a model it is a plain `Sequential`. Called on a symbolic
    `tf.Tensor` (in `ds.map`) on a backend other than TensorFlow, where a
    Keras `Sequential` cannot run (it would hand the TensorFlow tensor to JAX),
    it calls its layers one after the other instead: Keras's preprocessing
    layers and kerasreg's augmentation layers each know how to run in a
    `tf.data` graph on any backend. Unlike a plain `Sequential`, it is not
    locked to the shape of its first call: it takes a single image
    `(H, W, C)` or a batch `(N, H, W, C)` of any size, in any order.

    Args:
        layers: The augmentation layers. Defaults to `None`.
        name: Name of the pipeline. Defaults to `None`.
        **kwargs: `keras.Sequential` keyword arguments.

    Example:

    >>> import numpy as np
    >>> aug = AugmentationPipeline([keras.layers.RandomFlip("horizontal")])
    >>> tuple(aug(np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 8, 8, 3)
    """

    def build(self, input_shape=None):
        # No functional graph of the first call's shape (a `Sequential` would
        # build one, fixing the rank and batch size): the layers run one after
        # the other, so that a single image `(H, W, C)` and batches of any
        # size can follow each other, as for Keras's preprocessing layers.
        # Each layer builds itself on its first call.
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if keras.backend.backend() != "tensorflow":
            tf = tensorflow_of(inputs)
            if tf is not None and not tf.executing_eagerly():
                training = kwargs.get("training", args[0] if args else None)
                training = True if training is None else training
                x = inputs
                for layer in self.layers:
                    x = layer(x, training=training)
                return x
        return super().__call__(inputs, *args, **kwargs)


def pipeline(
    task: str = "natural",
    strength: float = 1.0,
    value_range: tuple[float, float] = (0, 255),
    seed: int | None = None,
    name: str | None = None,
) -> keras.Sequential:
    """A `keras.Sequential` of augmentations chosen for a kind of image.

    What an augmentation may change is what the label must not depend on, so
    the recipe depends on the images:

    - `"natural"` (CIFAR-10, ImageNet-like photos): horizontal flips (a
      mirrored cat is a cat; the world is rarely upside down, so never
      vertical flips), a random shift of up to 12.5% of the size with reflect
      fill (the pad-4-and-crop of CIFAR ResNets) and AlexNet's PCA colour
      shift (illumination changes). `keras.layers.RandomFlip`,
      `keras.layers.RandomTranslation`, `PCAColorAugmentation`.
    - `"digits"` (MNIST, SVHN): **never flips** - a mirrored 2 or 5 is not a
      digit and a 6 flipped upside down is a 9 - only small rotations
      (10 degrees), shifts (10%) and zooms (10%), the classic
      "elastic-lite" MNIST recipe.
    - `"text"` (word or character crops, scanned documents): never flips
      either (mirrored letters are other letters or none: b/d, p/q); tiny
      rotations (3 degrees) and shifts (5%), zooms (5%), plus 2%
      salt-and-pepper pixels to mimic scanning noise (`RandomPixelNoise`).
    - `"aerial"` (satellite, drone, microscopy): there is no "up" in an
      overhead view, so flips in both directions and rotations by any angle
      (reflect fill), plus the PCA colour shift (sun, haze, stain).

    `strength` scales every magnitude (shifts, angles, zooms, colour and noise
    levels) linearly; `1.0` is the recipe above, `0.5` half of it. For
    stronger, learned policies see `AutoAugment`; for the Inception /
    ResNet crops see `RandomResizedCrop` / `RandomScaleCrop`, which change the
    image size and are therefore not part of these size-preserving pipelines.

    Use it inside a model (active in `fit` only) or in `tf.data`
    (`ds.map(lambda x, y: (aug(x, training=True), y))`).

    Args:
        task: One of `"natural"`, `"digits"`, `"text"`, `"aerial"`.
            Defaults to `"natural"`.
        strength: Multiplier of all magnitudes, in `(0, 3]`. Defaults to
            `1.0`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed; layer `i` gets `seed + i`. Defaults to `None`.
        name: Name of the `Sequential`. Defaults to `None`
            (`"augmentation_<task>"`).

    Returns:
        An `AugmentationPipeline` (a `keras.Sequential`) of augmentation
        layers: images in, images out, same size, compute dtype. It takes a
        single image `(H, W, C)` or a batch `(N, H, W, C)` of any size, in any
        order of calls, and runs in `tf.data` on every backend (`ds.map` on
        batched or unbatched elements).

    Example:

    >>> import numpy as np
    >>> aug = pipeline("digits", strength=0.5, seed=0)
    >>> [type(layer).__name__ for layer in aug.layers]
    ['RandomRotation', 'RandomTranslation', 'RandomZoom']
    >>> tuple(aug(np.zeros((2, 28, 28, 1), "float32")).shape)
    (2, 28, 28, 1)

    Reference:
        - [Simard et al., 2003](https://doi.org/10.1109/ICDAR.2003.1227801),
          "Best Practices for Convolutional Neural Networks Applied to
          Visual Document Analysis".
        - [Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824),
          "ImageNet Classification with Deep Convolutional Neural Networks".
    """
    task = utils.check_choice("task", task, tuple(TASKS))
    s = utils.check_float("strength", strength, 0.0, 3.0, low_inclusive=False)
    value_range = utils.check_range("value_range", value_range, allow_equal=False)
    seed = utils.check_seed("seed", seed)
    counter = iter(range(100))

    def next_seed():
        i = next(counter)
        return None if seed is None else (seed + i) % (utils.SEED_MAX + 1)

    layers = []
    if task == "natural":
        layers = [
            keras.layers.RandomFlip("horizontal", seed=next_seed()),
            keras.layers.RandomTranslation(
                0.125 * s, 0.125 * s, fill_mode="reflect", seed=next_seed()
            ),
            PCAColorAugmentation(
                stddev=0.1 * s, value_range=value_range, seed=next_seed()
            ),
        ]
    elif task == "digits":
        layers = [
            keras.layers.RandomRotation(
                10.0 * s / 360.0, fill_mode="constant", seed=next_seed()
            ),
            keras.layers.RandomTranslation(
                0.1 * s, 0.1 * s, fill_mode="constant", seed=next_seed()
            ),
            keras.layers.RandomZoom(0.1 * s, fill_mode="constant", seed=next_seed()),
        ]
    elif task == "text":
        layers = [
            keras.layers.RandomRotation(
                3.0 * s / 360.0, fill_mode="nearest", seed=next_seed()
            ),
            keras.layers.RandomTranslation(
                0.05 * s, 0.05 * s, fill_mode="nearest", seed=next_seed()
            ),
            keras.layers.RandomZoom(0.05 * s, fill_mode="nearest", seed=next_seed()),
            RandomPixelNoise(
                min(0.02 * s, 0.5), value_range=value_range, seed=next_seed()
            ),
        ]
    elif task == "aerial":
        layers = [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=next_seed()),
            keras.layers.RandomRotation(
                min(0.5 * s, 0.5), fill_mode="reflect", seed=next_seed()
            ),
            PCAColorAugmentation(
                stddev=0.1 * s, value_range=value_range, seed=next_seed()
            ),
        ]
    return AugmentationPipeline(layers, name=name or f"augmentation_{task}")
