"""ResNet-style scale augmentation: random short side, random crop, per image."""

from __future__ import annotations

from keras import ops

from kerasreg import utils
from kerasreg.layers.augmentation_layer import _CropLayer
from kerasreg.ops.crop import sample_scale_crop_boxes


@utils.register
class RandomScaleCrop(_CropLayer):
    """Resizes each image to a random short side, then takes a random crop.

    The ResNet / VGG training recipe (Simonyan & Zisserman 2015, He et al.
    2016): each image is resized so that its shorter side is a random
    `L ~ U[short_side]` (drawn per image) and a random `height x width` patch
    of it is taken. Both steps are one per-image box resized to the output
    size, done for the whole batch at once (two batched matrix products, see
    `kerasreg.ops.crop_and_resize`).

    At inference the image is resized to the short side
    `inference_short_side` (ResNet evaluates 224 crops at 256) and the centre
    `height x width` crop is taken.

    Unlike Keras's `RandomZoom` (a projective transform, which has no XLA
    kernel on TensorFlow), the layer compiles with `jit_compile=True` on
    every backend.

    Args:
        height: Crop height. Defaults to none (required).
        width: Crop width. Defaults to none (required).
        short_side: `(min, max)` short side after resizing, in pixels;
            `min` must be at least `max(height, width)` so that the crop fits.
            Defaults to `(256, 480)`.
        inference_short_side: Short side used at inference; `None` uses
            `short_side[0]`. Defaults to `None`.
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
    >>> images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    >>> tuple(RandomScaleCrop(32, 32, short_side=(32, 40), seed=0)(images).shape)
    (4, 32, 32, 3)

    Reference:
        - [He et al., 2016](https://arxiv.org/abs/1512.03385), "Deep Residual
          Learning for Image Recognition", section 3.4.
        - [Simonyan & Zisserman, 2015](https://arxiv.org/abs/1409.1556),
          "Very Deep Convolutional Networks for Large-Scale Image
          Recognition", section 3.1.
    """

    def __init__(
        self,
        height,
        width,
        short_side=(256, 480),
        inference_short_side=None,
        interpolation="bilinear",
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(height, width, interpolation, value_range, seed, **kwargs)
        crop = max(self.height, self.width)
        self.short_side = utils.check_range("short_side", short_side, crop)
        if inference_short_side is not None:
            inference_short_side = utils.check_float(
                "inference_short_side", inference_short_side, crop
            )
        self.inference_short_side = inference_short_side

    def sample_boxes(self, batch_size, image_size):
        return sample_scale_crop_boxes(
            batch_size,
            image_size,
            (self.height, self.width),
            self.short_side,
            seed=self.seed_generator,
        )

    def infer(self, images):
        short = self.inference_short_side or self.short_side[0]
        h, w = images.shape[1], images.shape[2]
        factor = short / min(h, w)
        size = (max(self.height, round(h * factor)), max(self.width, round(w * factor)))
        resized = ops.image.resize(images, size, interpolation=self.interpolation)
        top = (size[0] - self.height) // 2
        left = (size[1] - self.width) // 2
        return resized[:, top : top + self.height, left : left + self.width, :]

    def get_config(self):
        config = {
            "short_side": list(self.short_side),
            "inference_short_side": self.inference_short_side,
        }
        return {**super().get_config(), **config}
