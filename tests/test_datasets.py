import numpy as np
import pytest

from kerasreg import datasets


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, per_class in (("train", 3), ("test", 2)):
        for name in datasets.CIFAR10_CLASSES:
            folder = tmp_path / "cifar" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    monkeypatch.setenv("KERASREG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cifar"


def test_load_from_folder_with_labels_in_class_order(fake_cifar):
    (x, y), (xt, yt) = datasets.load_cifar10(fake_cifar)
    assert x.shape == (30, 32, 32, 3) and x.dtype == np.uint8
    assert xt.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(y), [3] * 10)
    np.testing.assert_array_equal(np.bincount(yt), [2] * 10)
    assert len(set(y[:10].tolist())) > 3  # shuffled, not grouped by class
    # Second call reads the cache and gives the same arrays.
    (x2, y2), _ = datasets.load_cifar10(fake_cifar)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_env_var_and_subsets(fake_cifar, monkeypatch):
    monkeypatch.setenv("KERASREG_DATA_DIR", str(fake_cifar))
    (x, y), (xt, yt) = datasets.load_cifar10(train_size=20, test_size=10, seed=3)
    assert len(x) == 20 and len(xt) == 10
    np.testing.assert_array_equal(np.bincount(y), [2] * 10)
    (tr_x, tr_y), (va_x, va_y) = datasets.train_val_split(x, y, 10, seed=0)
    assert len(tr_x) == 10 and len(va_x) == 10
    np.testing.assert_array_equal(np.bincount(va_y), [1] * 10)


def test_bad_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="`data_dir`.*Received: data_dir="):
        datasets.load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="`size`"):
        datasets.stratified_subset(np.arange(5), 6)


def test_reachable_after_import_kerasreg_without_importing_more():
    # `import kerasreg` is enough (no `import kerasreg.datasets`), and it
    # imports TensorFlow only if Keras itself does (not on JAX).
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, keras\n"
        "before = 'tensorflow' in sys.modules\n"
        "import kerasreg\n"
        "assert callable(kerasreg.datasets.load_cifar10)\n"
        "assert kerasreg.datasets.CIFAR10_CLASSES[0] == 'airplane'\n"
        "print(before, 'tensorflow' in sys.modules)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
    )
    before, after = out.stdout.split()
    assert before == after
