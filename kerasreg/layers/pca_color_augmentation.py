"""AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al. 2012)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasreg import utils
from kerasreg._batches import input_batches
from kerasreg.layers.augmentation_layer import AugmentationLayer
from kerasreg.ops import pca_color


def _batches(data, batch_size):
    """NumPy image batches of `data` (see `kerasreg._batches.input_batches`)."""
    for batch in input_batches(data, batch_size, example_rank=3):
        if isinstance(batch, dict):
            raise ValueError(
                "`adapt` expects batches of images (or (images, labels) tuples), "
                f"received a dict with keys {list(batch)}."
            )
        yield np.asarray(batch)


@utils.register
class PCAColorAugmentation(AugmentationLayer):
    """AlexNet's "fancy PCA" colour augmentation: one RGB shift per image.

    The principal components of the RGB pixel values of the training set are
    the eigenvectors `p_i` (with eigenvalues `lambda_i`) of their 3x3
    covariance. During training every image gets its own
    `alpha_i ~ N(0, stddev)` and the offset `sum_i alpha_i * lambda_i * p_i`
    is added to all of its pixels: the intensity and colour of the
    illumination change, the object identity does not (Krizhevsky et al.
    report a 1% top-1 gain on ImageNet). The eigen-pairs are in the `[0, 1]`
    pixel scale whatever `value_range` is (the scale of the paper's published
    ImageNet values); the offset is rescaled to `value_range` and the result
    clipped to it. At inference the layer is the identity (cast to the compute
    dtype).

    By default the layer uses AlexNet's published ImageNet eigen-pairs
    (eigenvalues `[0.2175, 0.0188, 0.0045]`). `adapt(data)` replaces them with
    those of your data: like `keras.layers.Normalization.adapt`, it streams
    over the batches (sums and sums of outer products, in float64) and never
    holds the dataset in memory. The eigen-pairs are non-trainable weights, so
    they are saved with the model.

    Args:
        stddev: Standard deviation of the coefficients `alpha_i`. Defaults
            to `0.1`.
        value_range: `(min, max)` of the pixel values. Defaults to `(0, 255)`.
        seed: Integer seed. Defaults to `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`).

    Call arguments:
        inputs: RGB image `(H, W, 3)` or batch `(N, H, W, 3)`, integer or
            float, in `value_range`.
        training: Whether to augment. Defaults to `True` when called directly.

    Input shape:
        `(H, W, 3)` or `(N, H, W, 3)`.

    Output shape:
        Same as the input, in the compute dtype.

    Example:

    >>> import numpy as np
    >>> images = np.random.randint(0, 256, (8, 32, 32, 3)).astype("uint8")
    >>> layer = PCAColorAugmentation(stddev=0.1, seed=0)
    >>> layer.adapt(images, batch_size=4)
    >>> tuple(layer(images).shape)
    (8, 32, 32, 3)

    Reference:
        - [Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824),
          "ImageNet Classification with Deep Convolutional Neural Networks",
          section 4.1.
    """

    required_channels = 3

    def __init__(self, stddev=0.1, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(value_range=value_range, seed=seed, **kwargs)
        self.stddev = utils.check_float("stddev", stddev, 0.0)
        self.eigval = self.add_weight(
            name="eigval",
            shape=(3,),
            dtype="float32",
            initializer=keras.initializers.Constant(pca_color.IMAGENET_PCA_EIGVAL),
            trainable=False,
        )
        self.eigvec = self.add_weight(
            name="eigvec",
            shape=(3, 3),
            dtype="float32",
            initializer=keras.initializers.Constant(pca_color.IMAGENET_PCA_EIGVEC),
            trainable=False,
        )

    def adapt(self, data, batch_size=256, steps=None):
        """Computes the RGB eigen-pairs of `data`, streaming over its batches.

        Args:
            data: A NumPy array of images `(N, H, W, 3)`, a `tf.data.Dataset`
                of image batches (or `(images, labels)` tuples), or any
                iterable of such batches.
            batch_size: Batch size used to walk a NumPy array. Defaults to
                `256`.
            steps: Number of batches to read (all when `None`). Defaults to
                `None`.
        """
        utils.check_int("batch_size", batch_size, 1)
        lo, hi = self.value_range
        count = 0
        total = np.zeros(3)
        outer = np.zeros((3, 3))
        for step, batch in enumerate(_batches(data, batch_size)):
            if steps is not None and step >= steps:
                break
            if batch.ndim not in (3, 4) or batch.shape[-1] != 3:
                raise ValueError(
                    "`PCAColorAugmentation.adapt` expects RGB images of shape "
                    f"(N, H, W, 3). Received a batch of shape {batch.shape}"
                )
            pixels = (batch.reshape(-1, 3).astype("float64") - lo) / (hi - lo)
            if not np.all(np.isfinite(pixels)):
                raise ValueError(
                    "`PCAColorAugmentation.adapt` expects finite pixel values. "
                    f"Received a batch (step {step}) with "
                    f"{int(np.sum(~np.isfinite(pixels)))} NaN/inf values"
                )
            count += len(pixels)
            total += pixels.sum(axis=0)
            outer += pixels.T @ pixels
        if count < 2:
            raise ValueError("`PCAColorAugmentation.adapt` received no images.")
        eigval, eigvec = pca_color._rgb_covariance_eigen(count, total, outer)
        self.eigval.assign(eigval.astype("float32"))
        self.eigvec.assign(eigvec.astype("float32"))

    def augment(self, images):
        lo, hi = self.value_range
        alpha = keras.random.normal(
            (ops.shape(images)[0], 3), stddev=self.stddev, seed=self.seed_generator
        )
        offset = pca_color.pca_color_offset(
            alpha, ops.cast(self.eigval, "float32"), ops.cast(self.eigvec, "float32")
        )
        offset = ops.cast(offset * (hi - lo), images.dtype)
        return ops.clip(images + offset[:, None, None, :], lo, hi)

    def get_config(self):
        base_config = super().get_config()
        config = {"stddev": self.stddev}
        return {**base_config, **config}
