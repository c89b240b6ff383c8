"""Test session set-up shared by the whole suite.

- The Keras backend comes from `KERAS_BACKEND` (TensorFlow when unset).
- On the TensorFlow backend the single CPU is split into two logical devices
  before TensorFlow initialises, so `tf.distribute.MirroredStrategy` tests run
  with two replicas.
- Every test starts from a fixed random state and the `float32` policy.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests import toolkit  # noqa: E402

toolkit.configure_logical_cpus()

import keras  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.set_random_seed(1337)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
