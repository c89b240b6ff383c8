"""Test-time augmentation: average a classifier over crops, mirrors and scales."""

from __future__ import annotations

import keras
from keras import ops

from kerasreg import utils
from kerasreg._reduce import REDUCTIONS, reduce_probabilities
from kerasreg.ops.views import tta_views

CROPS = ("ten", "five", "center")


@utils.register
class TestTimeAugmentation(keras.Model):
    """Wraps a trained classifier to average its predictions over many views.

    The multi-crop evaluation of AlexNet and ResNet: for every input image the
    model builds each view, runs all the views of the whole batch in **one**
    batched forward pass of the wrapped classifier (in inference mode), and
    combines the class probabilities of the views of each image.

    Views are taken at the classifier's input size (`crop_size`):

    - `crops="center"`: the centre crop; `"five"`: the four corners and the
      centre; `"ten"`: the five crops and their horizontal mirrors (AlexNet's
      10 views). `flips=True` adds the mirrors to `"five"` or `"center"` too
      (`"ten"` always has them).
    - `scales`: the image is first resized so that its shorter side is each of
      these lengths (ResNet: 224 crops at short sides 224, 256, 384, 480,
      640), giving `len(scales)` times the views. `None`: the image as is.
    - `padding`: the (resized) image is reflect-padded by that many pixels
      first. For small images such as CIFAR-10 trained with pad-and-crop,
      `padding=4` with 32x32 crops gives corner views shifted by 4 pixels.

    `reduce` combines the views' probabilities: `"mean"` (arithmetic mean, as
    the papers), `"geometric_mean"` (mean of the log-probabilities,
    renormalised), `"vote"` (the fraction of views whose top class is each
    class) or `"max"` (per class, renormalised). With
    `from_logits=True` the classifier's outputs are turned into probabilities
    with a softmax first. The output is always a probability vector per image,
    so the model can be compiled with `"sparse_categorical_crossentropy"` and
    used with `predict`, `evaluate` or called directly. It is saved and loaded
    (`.keras`) with the classifier inside.

    Args:
        model: The trained classifier, a Keras model taking `(N, h, w, C)`
            images and returning `(N, classes)` scores.
        crops: `"ten"`, `"five"` or `"center"`. Defaults to `"ten"`.
        flips: Add horizontal mirrors of the `"five"` / `"center"` views.
            Defaults to `True`.
        scales: Short-side lengths to resize the images to, or `None`.
            Defaults to `None`.
        crop_size: `(h, w)` of the views; `None` takes the classifier's input
            size. Defaults to `None`.
        padding: Reflect padding in pixels added around the (resized) images.
            Defaults to `0`.
        reduce: `"mean"`, `"geometric_mean"`, `"vote"` or `"max"`. Defaults
            to `"mean"`.
        from_logits: Whether the classifier outputs logits. Defaults to
            `False`.
        image_size: `(H, W)` of the images given to this model; `None` takes
            the classifier's input size. Defaults to `None`.
        **kwargs: Base model keyword arguments (`name`).

    Call arguments:
        inputs: A batch of images `(N, H, W, C)`.

    Input shape:
        `(N, H, W, C)` with `(H, W) = image_size`.

    Output shape:
        `(N, classes)` probabilities.

    Example:

    >>> import keras, numpy as np
    >>> net = keras.Sequential([keras.Input((32, 32, 3)),
    ...                         keras.layers.GlobalAveragePooling2D(),
    ...                         keras.layers.Dense(10, activation="softmax")])
    >>> tta = TestTimeAugmentation(net, crops="ten", padding=4)
    >>> tta.num_views
    10
    >>> tta.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape
    (2, 10)

    Reference:
        - [Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824),
          "ImageNet Classification with Deep Convolutional Neural Networks",
          section 4.1 (ten views).
        - [He et al., 2016](https://arxiv.org/abs/1512.03385), "Deep Residual
          Learning for Image Recognition", section 3.4 (multi-scale 10-crop).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        model,
        crops="ten",
        flips=True,
        scales=None,
        crop_size=None,
        padding=0,
        reduce="mean",
        from_logits=False,
        image_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model):
            raise utils.invalid_value("model", "a Keras model", model)
        self.classifier = model
        self.crops = utils.check_choice("crops", crops, CROPS)
        self.flips = utils.check_bool("flips", flips)
        self.padding = utils.check_int("padding", padding, 0)
        self.reduce = utils.check_choice("reduce", reduce, REDUCTIONS)
        self.from_logits = utils.check_bool("from_logits", from_logits)
        model_size = self._model_input_size(model)
        self.crop_size = self._check_size("crop_size", crop_size, model_size)
        self.image_size = self._check_size("image_size", image_size, model_size)
        if scales is not None:
            if isinstance(scales, (int, float)):
                scales = [scales]
            scales = [utils.check_int("scales", s, 1) for s in scales]
            if not scales:
                raise utils.invalid_value(
                    "scales", "a non-empty list of short sides or None", scales
                )
        self.scales = scales
        self._check_views_fit()

    @staticmethod
    def _model_input_size(model):
        try:
            shape = model.input_shape
        except (AttributeError, ValueError):
            return None
        if isinstance(shape, list) or shape is None or len(shape) != 4:
            return None
        if shape[1] is None or shape[2] is None:
            return None
        return (int(shape[1]), int(shape[2]))

    @staticmethod
    def _check_size(name, size, default):
        if size is None:
            if default is None:
                raise utils.invalid_value(
                    name,
                    "an (height, width) pair (the classifier has no static "
                    "image input size to default to)",
                    size,
                )
            return tuple(default)
        try:
            h, w = size
        except (TypeError, ValueError):
            raise utils.invalid_value(name, "an (height, width) pair", size) from None
        return (utils.check_int(name, h, 1), utils.check_int(name, w, 1))

    def _check_views_fit(self):
        h, w = self.image_size
        ch, cw = self.crop_size
        for scale in self.scales or (None,):
            sh, sw = h, w
            if scale is not None:
                factor = scale / min(h, w)
                sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
            sh, sw = sh + 2 * self.padding, sw + 2 * self.padding
            if sh < ch or sw < cw:
                raise ValueError(
                    f"The crops ({ch}x{cw}) are larger than the image "
                    f"({sh}x{sw} after resizing to scale={scale} and "
                    f"padding={self.padding}). Received: crop_size={self.crop_size}, "
                    f"image_size={self.image_size}, scales={self.scales}"
                )

    @property
    def num_views(self) -> int:
        """Views per image: scales x crops x (2 with mirrors)."""
        per_scale = 1 if self.crops == "center" else 5
        if self.flips or self.crops == "ten":
            per_scale *= 2
        return per_scale * len(self.scales or (None,))

    def build(self, input_shape=None):
        if input_shape is not None:
            self._check_input_shape(input_shape)
        self.built = True

    def _check_input_shape(self, input_shape) -> None:
        """Refuses images of another size (the views are cut for `image_size`)."""
        shape = tuple(input_shape)
        size = tuple(shape[1:3]) if len(shape) == 4 else None
        known = size is not None and None not in size
        if size is None or (known and tuple(int(v) for v in size) != self.image_size):
            raise ValueError(
                "`TestTimeAugmentation` expects images of shape "
                f"(N, {self.image_size[0]}, {self.image_size[1]}, C). "
                f"Received: input shape={shape}"
            )

    def views(self, images):
        """The views of a batch, `(num_views, N, h, w, C)`."""
        images = ops.convert_to_tensor(images)
        if "float" not in str(images.dtype):
            images = ops.cast(images, "float32")
        return tta_views(
            images,
            self.crop_size,
            crops=self.crops,
            flips=self.flips,
            scales=self.scales,
            padding=self.padding,
        )

    def call(self, inputs, training=False):
        # Checked at every call, not only at the first build: a later batch
        # of another size would get views cut for the wrong size.
        self._check_input_shape(inputs.shape)
        views = self.views(inputs)
        num_views = views.shape[0]
        ch, cw = self.crop_size
        channels = views.shape[-1]
        batch = ops.reshape(views, (-1, ch, cw, channels))
        scores = self.classifier(batch, training=False)
        scores = ops.reshape(scores, (num_views, -1, scores.shape[-1]))
        scores = ops.cast(scores, "float32")
        return reduce_probabilities(scores, self.reduce, from_logits=self.from_logits)

    def compute_output_shape(self, input_shape):
        out = self.classifier.compute_output_shape(
            (input_shape[0], *self.crop_size, input_shape[-1])
        )
        return tuple(out)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "model": keras.saving.serialize_keras_object(self.classifier),
            "crops": self.crops,
            "flips": self.flips,
            "scales": self.scales,
            "crop_size": list(self.crop_size),
            "padding": self.padding,
            "reduce": self.reduce,
            "from_logits": self.from_logits,
            "image_size": list(self.image_size),
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)
