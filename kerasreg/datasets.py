"""CIFAR-10 for the examples and benchmarks.

`load_cifar10` reads a folder laid out as `train/<class>/*.jpg` and
`test/<class>/*.jpg` (the layout `keras.utils.image_dataset_from_directory`
reads), given as `data_dir` or through the `KERASREG_DATA_DIR` environment
variable; without either it falls back to `keras.datasets.cifar10`, which
downloads the data once. Decoded arrays are cached under
`~/.cache/kerasreg/` (never inside the project), so later runs start at once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kerasreg._io import atomic_path
from kerasreg.utils import check_int

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

ENV_VAR = "KERASREG_DATA_DIR"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The CIFAR-10 folder to read: `data_dir`, else `$KERASREG_DATA_DIR`, else None.

    Raises:
        ValueError: if the folder named has no `train/` and `test/` class folders.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or None
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    if not (path / "train").is_dir() or not (path / "test").is_dir():
        raise ValueError(
            "Invalid value received for argument `data_dir`. Expected a folder "
            "holding `train/<class>/*.jpg` and `test/<class>/*.jpg`. "
            f"Received: data_dir={str(data_dir)!r}"
        )
    return path


def _cache_path(split_dir: Path) -> Path:
    files = sorted(split_dir.glob("*/*"))
    stamp = f"{split_dir.resolve()}|{len(files)}|{max((f.stat().st_mtime for f in files), default=0)}"
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:16]
    root = Path(
        os.environ.get("KERASREG_CACHE_DIR", Path.home() / ".cache" / "kerasreg")
    )
    return root / f"{split_dir.name}-{digest}.npz"


def _read_split_tf(split_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    import keras

    ds = keras.utils.image_dataset_from_directory(
        split_dir,
        labels="inferred",
        label_mode="int",
        class_names=list(CIFAR10_CLASSES),
        image_size=(32, 32),
        batch_size=2048,
        shuffle=False,
        verbose=False,
    )
    xs, ys = [], []
    for x, y in ds:
        xs.append(np.asarray(x).round().astype("uint8"))
        ys.append(np.asarray(y).astype("int32"))
    return np.concatenate(xs), np.concatenate(ys)


def _read_split_pil(split_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        files = sorted((split_dir / name).iterdir())
        for f in (f for f in files if f.suffix.lower() in _IMAGE_SUFFIXES):
            with Image.open(f) as im:
                xs.append(np.asarray(im.convert("RGB"), dtype="uint8"))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype="int32")


def _read_split(split_dir: Path, cache: bool) -> tuple[np.ndarray, np.ndarray]:
    path = _cache_path(split_dir) if cache else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return data["x"], data["y"]
    try:
        import tensorflow  # noqa: F401

        x, y = _read_split_tf(split_dir)
    except ImportError:  # No TensorFlow (e.g. a JAX-only install): decode with PIL.
        x, y = _read_split_pil(split_dir)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, x=x, y=y)
    return x, y


def stratified_subset(y: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced random subset of `size` labels, sorted."""
    size = check_int("size", size, 1, len(y))
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    picked = []
    for i, c in enumerate(classes):
        members = rng.permutation(np.flatnonzero(y == c))
        share = size // len(classes) + (1 if i < size % len(classes) else 0)
        picked.append(members[:share])
    return np.sort(np.concatenate(picked))


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    cache: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads CIFAR-10 as `((x_train, y_train), (x_test, y_test))`.

    Images are `uint8` arrays of shape `(n, 32, 32, 3)`, labels `int32` of
    shape `(n,)` numbering the classes in the standard order
    (`CIFAR10_CLASSES`). Examples come in a seeded random order, never
    grouped by class.

    Args:
        data_dir: a folder with `train/` and `test/` class folders of JPEGs.
            Defaults to `None`: `$KERASREG_DATA_DIR` if set, otherwise
            `keras.datasets.cifar10` (downloaded once).
        train_size: a class-balanced random subset of the training images of
            this size. Defaults to `None` (all 50,000).
        test_size: likewise for the test images. Defaults to `None` (all).
        seed: seed of the subsets. Defaults to `0`.
        cache: keep decoded arrays under `~/.cache/kerasreg/`. Defaults to `True`.

    Example:

    >>> (x, y), (x_test, y_test) = load_cifar10(train_size=10_000)  # doctest: +SKIP
    """
    path = resolve_data_dir(data_dir)
    if path is None:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        y_train = y_train.reshape(-1).astype("int32")
        y_test = y_test.reshape(-1).astype("int32")
    else:
        x_train, y_train = _read_split(path / "train", cache)
        x_test, y_test = _read_split(path / "test", cache)
    if train_size is not None:
        idx = stratified_subset(y_train, train_size, seed=seed)
        x_train, y_train = x_train[idx], y_train[idx]
    if test_size is not None:
        idx = stratified_subset(y_test, test_size, seed=seed)
        x_test, y_test = x_test[idx], y_test[idx]
    # Class folders are read class by class: shuffle, so that a first-N slice
    # or `validation_split` does not see a single class.
    rng = np.random.default_rng(seed)
    train_order, test_order = (
        rng.permutation(len(y_train)),
        rng.permutation(len(y_test)),
    )
    return (x_train[train_order], y_train[train_order]), (
        x_test[test_order],
        y_test[test_order],
    )


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_size: int, *, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Carves a class-balanced validation split of `val_size` from `(x, y)`."""
    val_size = check_int("val_size", val_size, 1, len(y) - 1)
    val_idx = stratified_subset(y, val_size, seed=seed + 1)
    mask = np.ones(len(y), dtype=bool)
    mask[val_idx] = False
    return (x[mask], y[mask]), (x[val_idx], y[val_idx])
