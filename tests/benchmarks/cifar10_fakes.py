"""Small CIFAR-10-shaped data for the benchmark's tests (not a test module)."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def fake_arrays(per_class_train=16, per_class_test=8, seed=0):
    """Images whose mean colour depends on the class (so a net can learn), labels interleaved."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.tile(np.arange(10, dtype=np.int32), n)
        base = (y[:, None, None, None] * 23 + np.array([0, 80, 160])) % 256
        x = np.clip(base + rng.integers(-40, 40, size=(len(y), 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y

    return (*make(per_class_train), *make(per_class_test))


def write_pickle_dir(root: Path, arrays) -> Path:
    x_tr, y_tr, x_te, y_te = arrays
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(y_tr)), 5), 1):
        blob = {b"data": x_tr[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1), b"labels": y_tr[idx].tolist()}
        (d / f"data_batch_{i}").write_bytes(pickle.dumps(blob))
    blob = {b"data": x_te.transpose(0, 3, 1, 2).reshape(len(y_te), -1), b"labels": y_te.tolist()}
    (d / "test_batch").write_bytes(pickle.dumps(blob))
    return d


def write_jpeg_dir(root: Path, arrays) -> Path:
    from PIL import Image

    x_tr, y_tr, x_te, y_te = arrays
    d = root / "cifar10-jpeg"
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        count: dict = {}
        for img, lab in zip(x, y):
            k = count.get(lab, 0)
            count[lab] = k + 1
            f = d / split / CLASSES[lab] / f"{k:04d}.jpg"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(f, quality=95)
    return d


def tar_gz(src: Path, dest: Path, inner: bool) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        if inner:  # the official archive holds the folder itself
            tf.add(src, arcname=src.name)
        else:  # the JPEG copy holds train/ and test/ at the top
            for child in sorted(src.iterdir()):
                tf.add(child, arcname=child.name)
    return dest


def use_fake_data(data_module, folder="/fake/cifar-10-batches-py", **kw) -> None:
    """Make the command load :func:`fake_arrays` (of the preset's counts, ``kw``) whatever --data says."""
    data_module.find_source = lambda path=None: (Path(folder), "pickle-dir")
    data_module.load_cifar10 = lambda path=None, **_: fake_arrays(**kw)


# a subprocess that runs the command on fake data: python -c CLI_SCRIPT ARGS...
CLI_SCRIPT = f"""
import sys
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(HERE)!r})
from cifar10_fakes import use_fake_data
from benchmarks.cifar10 import data
from benchmarks.cifar10.__main__ import main
use_fake_data(data)
raise SystemExit(main(sys.argv[1:]))
"""
