"""Random pixel corruption: salt-and-pepper, value flips or Gaussian noise."""

from __future__ import annotations

from kerasreg import utils
from kerasreg.layers.augmentation_layer import AugmentationLayer
from kerasreg.ops.noise import pixel_noise

MODES = ("salt_and_pepper", "flip", "gaussian")


@utils.register
class RandomPixelNoise(AugmentationLayer):
    """Corrupts a random fraction of the pixels of each image.

    Each pixel of each image (all its channels together) is hit independently
    with probability `rate`, so every image gets its own corrupted pixels:

    - `"salt_and_pepper"`: the pixel becomes the minimum or the maximum of
      `value_range` (a fair coin), the classic impulse noise;
    - `"flip"`: the pixel is mirrored in the range, `min + max - x` (for
      binary images such as scanned digits or text, a bit flip);
    - `"gaussian"`: `N(0, stddev * (max - min))` noise is added to the
      pixel's channels, clipped to the range.

    Corrupted inputs are a regulariser in the denoising-autoencoder sense
    (Vincent et al. 2008): the network must not rely on any single pixel.
    At inference the layer is the identity (cast to the compute dtype).

    Args:
        rate: Fraction of pixels corrupted, in `[0, 1)`. Defaults to none
            (required).
        mode: `"salt_and_pepper"`, `"flip"` or `"gaussian"`. Defaults to
            `"salt_and_pepper"`.
        stddev: Noise standard deviation for `"gaussian"`, as a fraction of
            the value range. Defaults to `0.1`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: Image `(H, W, C)` or batch `(N, H, W, C)`, integer or float.
        training: Whether to corrupt. Defaults to `True` when called directly.

    Input shape:
        `(H, W, C)` or `(N, H, W, C)`.

    Output shape:
        Same as the input, in the compute dtype.

    Example:

    >>> import numpy as np
    >>> images = np.full((2, 8, 8, 1), 128, "uint8")
    >>> out = RandomPixelNoise(0.25, seed=0)(images)
    >>> tuple(out.shape)
    (2, 8, 8, 1)

    Reference:
        - [Vincent et al., 2008](https://doi.org/10.1145/1390156.1390294),
          "Extracting and Composing Robust Features with Denoising
          Autoencoders".
        - [Gonzalez & Woods](https://www.imageprocessingplace.com/),
          "Digital Image Processing", section 5.2 (noise models).
    """

    def __init__(
        self,
        rate,
        mode="salt_and_pepper",
        stddev=0.1,
        value_range=(0, 255),
        seed=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.rate = utils.check_rate("rate", rate)
        self.mode = utils.check_choice("mode", mode, MODES)
        self.stddev = utils.check_float("stddev", stddev, 0.0)

    def augment(self, images):
        return pixel_noise(
            images,
            self.rate,
            self.mode,
            self.value_range,
            self.stddev,
            seed=self.seed_generator,
        )

    def get_config(self):
        base_config = super().get_config()
        config = {"rate": self.rate, "mode": self.mode, "stddev": self.stddev}
        return {**base_config, **config}
