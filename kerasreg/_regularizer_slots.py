"""The layer attributes (and config keys) that hold a weight's regularizer.

Shared by `add_weight_regularization` and `sanity_check`. Private plumbing:
the names may change.
"""

__all__ = ["KERNEL_REGULARIZER_SLOTS", "NORMALIZATION_REGULARIZER_SLOTS"]

# The kernels of Keras's layers (`Dense`, `Conv*`, `SeparableConv*`, `LSTM`,
# `Embedding`, ...): `get_config` serializes them, so a model saved and
# reloaded keeps its regularizers. Biases (`bias_regularizer`) are apart.
KERNEL_REGULARIZER_SLOTS = (
    "kernel_regularizer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "recurrent_regularizer",
    "embeddings_regularizer",
)

# The scale and offset of normalization layers.
NORMALIZATION_REGULARIZER_SLOTS = ("gamma_regularizer", "beta_regularizer")
