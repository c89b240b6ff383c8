"""One `tf.distribute.MirroredStrategy` for the whole test session.

Several MirroredStrategy objects in one process can mix up their collective
all-reduces ("Shape mismatch in the collective instance ..."), so the
callback tests share a single two-replica strategy (TensorFlow backend).
"""

import functools


@functools.cache
def mirrored_strategy():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy
