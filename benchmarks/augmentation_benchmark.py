"""Speed of the augmentation layers and test-time augmentation.

Every comparison runs both sides in this one process, on the same data; the
sides are timed in alternation (A, B, A, B, ...) after a warm-up pass, so that
load from other jobs on a shared machine hits both alike, and the median time
of each side is reported. Printed ratios against the issue's targets:

1. Throughput (images/s) of each new layer in a `tf.data` pipeline
   (`ds.batch(b).map(layer, num_parallel_calls=AUTOTUNE).prefetch`) on 32x32
   and 224x224 uint8 images (real CIFAR-10 photos; the 224 ones upsampled),
   against the nearest Keras layer(s), target ratio kerasreg / Keras >= 1:
   `RandomResizedCrop` and `RandomScaleCrop` vs `RandomZoom` + `RandomCrop`,
   `PCAColorAugmentation` vs `RandomColorJitter`, `AutoAugment` vs
   `RandAugment` (`num_ops=2`, AutoAugment's two steps per sub-policy;
   `factor=0.6`, the mean magnitude of the two policies' steps: 0.59 and
   0.64 of the 0-9 scale), vs the select-everything algorithm on today's
   image ops (`reference_augment`) and vs the code before its rewrite
   (`--old`, default 54b2ff8: that revision's `auto_augment.py` and
   `ops/image.py`, loaded from git under another name), target >= 5x at
   32 px; informative: `RandomPixelNoise` vs `GaussianNoise`.
2. Epoch time of a small CIFAR-10 CNN fed by `tf.data` with flip
   (`keras.layers.RandomFlip`) + crop (`RandomScaleCrop`) + PCA colour in the
   pipeline, against the same pipeline without augmentation: target <= 1.10x.
3. 10-crop `TestTimeAugmentation.evaluate` against single-view
   `model.evaluate` of the same model on the same images: target <= 11x.

The `tf.data` figures are meant for the TensorFlow backend, where the layers
run inside the `tf.data` graph; on JAX they run through `tf.numpy_function`
(eager JAX per batch), which this script also measures if asked.

Usage:

    KERAS_BACKEND=tensorflow python benchmarks/augmentation_benchmark.py
    # --repeats N timed passes per side (default 5), --quick for a smoke run,
    # --only throughput|epoch|tta, --epoch-images N (default 10000),
    # --tta-images N (default 5000), --data-dir PATH (else $KERASREG_DATA_DIR),
    # --layers RandomResizedCrop,... (part 1 for some layers only),
    # --sizes 32 (part 1 at some sizes only), --old REV (AutoAugment's old side)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _revisions import load_module, source_at  # noqa: E402

import kerasreg  # noqa: E402
from kerasreg.datasets import load_cifar10  # noqa: E402
from kerasreg.layers.auto_augment import reference_augment  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE
#: The revision before `AutoAugment`'s rewrite (select everything, per stage).
DEFAULT_OLD = "54b2ff8"
#: The kerasreg layers part 1 times (each against its nearest Keras layer).
LAYER_NAMES = (
    "RandomResizedCrop",
    "RandomScaleCrop",
    "PCAColorAugmentation",
    "AutoAugment(imagenet)",
    "AutoAugment(cifar10)",
    "RandomPixelNoise",
)


def alternate(sides, repeats):
    """Runs each side once to warm up, then `repeats` alternating timed runs."""
    for fn in sides.values():
        fn()
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def dataset(x, batch, stages, y=None):
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(batch)
    if stages:

        def apply(t, *rest):
            for stage in stages:
                t = stage(t, training=True)
            return (t, *rest) if rest else t

        ds = ds.map(apply, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def to_float(t, training=True):
    """GaussianNoise needs float input (ours take uint8)."""
    return tf.cast(t, "float32")


class SelectAllAutoAugment(kerasreg.layers.AutoAugment):
    """`AutoAugment` through its original select-everything path.

    Every operation of the policy computed for the whole batch and selected
    per image (`reference_augment`): the baseline of the rewrite, with the
    same policy, seed and draws.
    """

    def augment(self, images):
        return reference_augment(self, images)


def load_old_autoaugment(rev):
    """The `AutoAugment` class of git revision `rev`, with that revision's ops.

    Its `ops/image.py` is loaded as `kerasreg_old_image` and its
    `auto_augment.py` imports it in place of today's; the class is not
    registered for saving (the name is today's layer's).
    """

    load_module("kerasreg_old_image", source_at(rev, "kerasreg/ops/image.py"))
    source = source_at(rev, "kerasreg/layers/auto_augment.py")
    replaced = source.replace(
        "from kerasreg.ops import image as image_ops",
        "import kerasreg_old_image as image_ops",
    ).replace("@utils.register\n", "")
    if replaced.count("kerasreg_old_image") != 1:
        raise SystemExit(f"--old {rev}: its auto_augment.py does not import ops/image")
    return load_module("kerasreg_old_auto_augment", replaced).AutoAugment


def drain(ds):
    def run():
        for _ in ds:
            pass

    return run


def throughput(x32, x224, repeats, quick, layers=None, sizes=(32, 224), old_rev=None):
    print("\n== 1. tf.data throughput (images/s), kerasreg vs nearest Keras ==")
    kl = keras.layers
    rows = []
    old_class = load_old_autoaugment(old_rev) if old_rev else None
    for size, x, batch in ((32, x32, 128), (224, x224, 32)):
        if size not in sizes:
            continue
        s = size
        pairs = [
            (
                "RandomResizedCrop",
                [kerasreg.layers.RandomResizedCrop(s, s, seed=0)],
                "RandomZoom+RandomCrop",
                [kl.RandomZoom((-0.5, 0.3), seed=0), kl.RandomCrop(s, s, seed=0)],
            ),
            (
                "RandomScaleCrop",
                [kerasreg.layers.RandomScaleCrop(s, s, (s, round(1.25 * s)), seed=0)],
                "RandomZoom+RandomCrop",
                [kl.RandomZoom((-0.2, 0.0), seed=0), kl.RandomCrop(s, s, seed=0)],
            ),
            (
                "PCAColorAugmentation",
                [kerasreg.layers.PCAColorAugmentation(seed=0)],
                "RandomColorJitter",
                [
                    kl.RandomColorJitter(
                        value_range=(0, 255),
                        brightness_factor=0.2,
                        contrast_factor=0.2,
                        saturation_factor=(0.4, 0.6),
                        seed=0,
                    )
                ],
            ),
            (
                "AutoAugment(imagenet)",
                [kerasreg.layers.AutoAugment("imagenet", seed=0)],
                "RandAugment",
                [kl.RandAugment(value_range=(0, 255), num_ops=2, factor=0.6, seed=0)],
            ),
            (
                "AutoAugment(cifar10)",
                [kerasreg.layers.AutoAugment("cifar10", seed=0)],
                "RandAugment",
                [kl.RandAugment(value_range=(0, 255), num_ops=2, factor=0.6, seed=0)],
            ),
            (
                "RandomPixelNoise",
                [kerasreg.layers.RandomPixelNoise(0.05, mode="gaussian", seed=0)],
                "GaussianNoise",
                [to_float, kl.GaussianNoise(0.5, seed=0)],
            ),
        ]
        for ours_name, ours, keras_name, theirs in pairs:
            if layers and ours_name not in layers:
                continue
            sides = {
                "ours": drain(dataset(x, batch, ours)),
                "keras": drain(dataset(x, batch, theirs)),
            }
            if ours_name.startswith("AutoAugment"):
                # The select-everything implementation, same policy and seed.
                old = SelectAllAutoAugment(ours[0].policy, seed=0)
                sides["old"] = drain(dataset(x, batch, [old]))
                if old_class is not None:
                    original = old_class(ours[0].policy, seed=0)
                    sides["original"] = drain(dataset(x, batch, [original]))
            med = alternate(sides, repeats)
            a, b = len(x) / med["ours"], len(x) / med["keras"]
            target = "" if ours_name == "RandomPixelNoise" else "  (target >= 1)"
            rows.append((size, ours_name, a, keras_name, b))
            print(
                f"{size:>3}px  {ours_name:<22} {a:>9.0f}/s   {keras_name:<22} "
                f"{b:>9.0f}/s   ratio {a / b:5.2f}{target}",
                flush=True,
            )
            if "old" in med:
                c = len(x) / med["old"]
                print(
                    f"{size:>3}px  {ours_name:<22} {a:>9.0f}/s   {'old (select all)':<22} "
                    f"{c:>9.0f}/s   ratio {a / c:5.2f}  (target >= 5 at 32 px)",
                    flush=True,
                )
            if "original" in med:
                c = len(x) / med["original"]
                print(
                    f"{size:>3}px  {ours_name:<22} {a:>9.0f}/s   "
                    f"{'original (' + old_rev + ')':<22} "
                    f"{c:>9.0f}/s   ratio {a / c:5.2f}  (target >= 5 at 32 px)",
                    flush=True,
                )
    return rows


def small_cnn():
    kl = keras.layers
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            kl.Rescaling(1 / 255.0),
            kl.Conv2D(32, 3, padding="same", activation="relu"),
            kl.Conv2D(32, 3, padding="same", activation="relu"),
            kl.MaxPooling2D(),
            kl.Conv2D(64, 3, padding="same", activation="relu"),
            kl.Conv2D(64, 3, padding="same", activation="relu"),
            kl.MaxPooling2D(),
            kl.Flatten(),
            kl.Dense(128, activation="relu"),
            kl.Dense(10, activation="softmax"),
        ]
    )


def epoch_time(x, y, repeats):
    print("\n== 2. epoch of a small CIFAR-10 CNN: flip+crop+PCA in tf.data vs none ==")
    stages = [
        keras.layers.RandomFlip("horizontal", seed=0),
        kerasreg.layers.RandomScaleCrop(32, 32, short_side=(32, 40), seed=0),
        kerasreg.layers.PCAColorAugmentation(seed=0),
    ]
    plain_ds = dataset(x, 128, [], y)
    aug_ds = dataset(x, 128, stages, y)
    models = {}
    for name in ("plain", "aug"):
        keras.utils.set_random_seed(0)
        m = small_cnn()
        m.compile("adam", "sparse_categorical_crossentropy")
        models[name] = m

    def fit(name, ds):
        return lambda: models[name].fit(ds, epochs=1, verbose=0)

    med = alternate(
        {"plain": fit("plain", plain_ds), "aug": fit("aug", aug_ds)}, repeats
    )
    ratio = med["aug"] / med["plain"]
    print(
        f"{len(x)} images, batch 128: no augmentation {med['plain']:.2f} s/epoch, "
        f"flip+crop+PCA {med['aug']:.2f} s/epoch, ratio {ratio:.3f} (target <= 1.10)"
    )
    return med, ratio


def tta_time(x, y, repeats):
    print("\n== 3. 10-crop TestTimeAugmentation.evaluate vs single view ==")
    keras.utils.set_random_seed(0)
    model = small_cnn()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    tta = kerasreg.TestTimeAugmentation(model, crops="ten", padding=4)
    tta.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    med = alternate(
        {
            "single": lambda: model.evaluate(x, y, batch_size=256, verbose=0),
            "ten": lambda: tta.evaluate(x, y, batch_size=256, verbose=0),
        },
        repeats,
    )
    ratio = med["ten"] / med["single"]
    print(
        f"{len(x)} images, batch 256: single view {med['single']:.2f} s, "
        f"10 views {med['ten']:.2f} s, ratio {ratio:.2f} (target <= 11)"
    )
    return med, ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("throughput", "epoch", "tta"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epoch-images", type=int, default=None)
    parser.add_argument("--tta-images", type=int, default=None)
    parser.add_argument(
        "--layers",
        default=None,
        help="comma-separated kerasreg layers to time in part 1 (default: all), "
        "e.g. RandomResizedCrop,AutoAugment(cifar10)",
    )
    parser.add_argument(
        "--sizes", default="32,224", help="image sizes of part 1 (32 and/or 224)"
    )
    parser.add_argument(
        "--old",
        default=DEFAULT_OLD,
        help="git revision whose AutoAugment is the 'original' side "
        f"(default {DEFAULT_OLD}, before the rewrite; '' to skip it)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    except ValueError:
        sizes = ()
    if not sizes or not set(sizes) <= {32, 224}:
        parser.error(f"--sizes takes 32 and/or 224. Received: {args.sizes!r}")
    layers = args.layers.split(",") if args.layers else None
    if layers and not set(layers) <= set(LAYER_NAMES):
        parser.error(
            f"--layers takes names from {', '.join(LAYER_NAMES)}. "
            f"Received: {args.layers!r}"
        )
    repeats = 2 if args.quick else args.repeats
    n32, n224, n_train, n_test = (
        (1024, 64, 2048, 1000) if args.quick else (4096, 256, 10000, 5000)
    )
    n_train = args.epoch_images or n_train
    n_test = args.tta_images or n_test
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"tensorflow {tf.__version__}, {os.cpu_count()} CPUs"
    )
    (x_train, y_train), (x_test, y_test) = load_cifar10(
        args.data_dir, train_size=max(n32, n_train), test_size=n_test
    )
    if args.only in (None, "throughput"):
        x32 = x_train[:n32]
        x224 = tf.cast(tf.image.resize(x_train[:n224], (224, 224)), tf.uint8).numpy()
        throughput(x32, x224, repeats, args.quick, layers, sizes, args.old or None)
    if args.only in (None, "epoch"):
        epoch_time(x_train[:n_train], y_train[:n_train], repeats)
    if args.only in (None, "tta"):
        tta_time(x_test, y_test, repeats)


if __name__ == "__main__":
    main()
