"""Does augmentation (and test-time augmentation) help on real CIFAR-10?

Trains the same small CNN twice for the same number of epochs, from the same
initial weights and on the same images: once on the raw training images, once
with `kerasreg.augmentation.pipeline("natural")` (horizontal flip, random
shift of up to 4 pixels with reflect fill, AlexNet PCA colour) applied per
image in the `tf.data` pipeline. Each model is then evaluated on the 10,000
CIFAR-10 test images, which nothing else touches: single centre view, and
10-crop `TestTimeAugmentation` (four corners + centre of the image
reflect-padded by 4 pixels, and their mirrors).

Usage:

    python benchmarks/augmentation_effectiveness.py            # all 50,000, 30 epochs
    python benchmarks/augmentation_effectiveness.py --quick    # 5,000 images, 4 epochs
    # --epochs N, --train-size N, --batch-size N, --width N, --data-dir PATH
    # (else $KERASREG_DATA_DIR, else keras.datasets.cifar10)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerasreg  # noqa: E402
from kerasreg.datasets import load_cifar10  # noqa: E402


def cnn(seed=0, width=32):
    """A small VGG-style CNN with batch normalization.

    Three blocks of two 3x3 convolutions with `width`, `2 * width` and
    `4 * width` filters (~0.29M weights at the default `width=32`, ~73k at
    `width=16`, a quarter of the multiply-adds).

    BatchNormalization momentum 0.9 (not Keras's 0.99): with the few hundred
    steps of a `--quick` run, 0.99 leaves the moving statistics far from the
    data's and the test accuracy at chance.
    """
    keras.utils.set_random_seed(seed)
    kl = keras.layers

    def block(filters):
        return [
            kl.Conv2D(filters, 3, padding="same", use_bias=False),
            kl.BatchNormalization(momentum=0.9),
            kl.ReLU(),
            kl.Conv2D(filters, 3, padding="same", use_bias=False),
            kl.BatchNormalization(momentum=0.9),
            kl.ReLU(),
            kl.MaxPooling2D(),
        ]

    return keras.Sequential(
        [keras.Input((32, 32, 3)), kl.Rescaling(1 / 255.0)]
        + block(width)
        + block(2 * width)
        + block(4 * width)
        + [kl.GlobalAveragePooling2D(), kl.Dense(10, activation="softmax")],
        name="small_cnn",
    )


def train(x, y, epochs, batch_size, augment, steps_per_epoch, width=32):
    model = cnn(width=width)
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps=max(1, epochs * steps_per_epoch)
    )
    model.compile(
        keras.optimizers.Adam(schedule),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
    ds = ds.batch(batch_size)
    if augment:
        aug = kerasreg.augmentation.pipeline("natural", seed=0)
        ds = ds.map(
            lambda a, b: (aug(a, training=True), b),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    ds = ds.prefetch(tf.data.AUTOTUNE)
    t0 = time.perf_counter()
    history = model.fit(ds, epochs=epochs, verbose=2)
    return model, history.history, time.perf_counter() - t0


def evaluate(model, x, y):
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    single = model.evaluate(x, y, batch_size=500, verbose=0)[1]
    tta = kerasreg.TestTimeAugmentation(model, crops="ten", padding=4)
    tta.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ten = tta.evaluate(x, y, batch_size=250, verbose=0)[1]
    return single, ten


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--width", type=int, default=32, help="filters of the first block"
    )
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error(f"--width must be at least 1. Received: {args.width}")
    epochs = args.epochs or (4 if args.quick else 30)
    train_size = args.train_size or (5000 if args.quick else None)
    (x, y), (x_test, y_test) = load_cifar10(args.data_dir, train_size=train_size)
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}; "
        f"{len(x)} training images, {len(x_test)} test images, {epochs} epochs, "
        f"batch {args.batch_size}, width {args.width}"
    )
    steps = int(np.ceil(len(x) / args.batch_size))
    rows = []
    for augment in (False, True):
        name = "flip+shift+PCA" if augment else "no augmentation"
        print(f"\n-- training: {name}")
        model, hist, seconds = train(
            x, y, epochs, args.batch_size, augment, steps, width=args.width
        )
        single, ten = evaluate(model, x_test, y_test)
        rows.append((name, hist["accuracy"][-1], single, ten, seconds))
    print(
        f"\n{'training':<18} {'train acc':>9} {'test acc':>9} "
        f"{'test 10-crop':>12} {'train time':>10}"
    )
    for name, train_acc, single, ten, seconds in rows:
        print(
            f"{name:<18} {train_acc:>9.4f} {single:>9.4f} {ten:>12.4f} {seconds:>9.0f}s"
        )


if __name__ == "__main__":
    main()
