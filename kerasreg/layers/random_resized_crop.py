"""Inception-style random-resized crop (Szegedy et al. 2015), per image."""

from __future__ import annotations

from keras import ops

from kerasreg import utils
from kerasreg.layers.augmentation_layer import _CropLayer
from kerasreg.ops.crop import sample_resized_crop_boxes


@utils.register
class RandomResizedCrop(_CropLayer):
    """Crops a random area and aspect ratio of each image, resized to a fixed size.

    The Inception training crop (Szegedy et al. 2015; torchvision's
    `RandomResizedCrop`): for every image its own box is drawn, covering a
    fraction of the image area uniform in `scale` and with an aspect ratio
    (width / height) log-uniform in `ratio`; the box is resized to
    `(height, width)`. Up to 10 boxes are tried per image, the first one
    inside the image wins; when none fits, the largest centred box with the
    aspect clipped to `ratio` is used. All images of a batch are cropped at
    once, each with its own box (Keras's `RandomCrop` uses one location for
    the whole batch), by two batched matrix products (see
    `kerasreg.ops.crop_and_resize`).

    At inference the layer takes the largest centred crop with the output
    aspect ratio and resizes it (`keras.ops.image.resize` with
    `crop_to_aspect_ratio=True`).

    Unlike Keras's `RandomZoom` (a projective transform, which has no XLA
    kernel on TensorFlow), the layer compiles with `jit_compile=True` on
    every backend.

    Args:
        height: Output height. Defaults to none (required).
        width: Output width. Defaults to none (required).
        scale: `(min, max)` fraction of the image area, in `(0, 1]`.
            Defaults to `(0.08, 1.0)`.
        ratio: `(min, max)` aspect ratio (width / height), positive.
            Defaults to `(3/4, 4/3)`.
        interpolation: `"bilinear"` or `"nearest"`. Defaults to `"bilinear"`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Image `(H, W, C)` or batch `(N, H, W, C)`, integer or float.
        training: Whether to take random crops. Defaults to `True` when called
            directly.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)` with known `H` and `W`.

    Output shape:
        `(height, width, C)` or `(N, height, width, C)`.

    Example:

    >>> import numpy as np
    >>> images = np.random.uniform(0, 255, (4, 64, 48, 3)).astype("float32")
    >>> tuple(RandomResizedCrop(32, 32, seed=0)(images).shape)
    (4, 32, 32, 3)

    Reference:
        - [Szegedy et al., 2015](https://arxiv.org/abs/1409.4842), "Going
          deeper with convolutions", section 6.
    """

    def __init__(
        self,
        height,
        width,
        scale=(0.08, 1.0),
        ratio=(3 / 4, 4 / 3),
        interpolation="bilinear",
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(height, width, interpolation, value_range, seed, **kwargs)
        self.scale = utils.check_range("scale", scale, 0.0, 1.0, low_exclusive=True)
        self.ratio = utils.check_range("ratio", ratio, 0.0, low_exclusive=True)

    def sample_boxes(self, batch_size, image_size):
        return sample_resized_crop_boxes(
            batch_size, image_size, self.scale, self.ratio, seed=self.seed_generator
        )

    def infer(self, images):
        return ops.image.resize(
            images,
            (self.height, self.width),
            interpolation=self.interpolation,
            crop_to_aspect_ratio=True,
        )

    def get_config(self):
        config = {"scale": list(self.scale), "ratio": list(self.ratio)}
        return {**super().get_config(), **config}
