"""CIFAR-10 loading: the official python batches or the JPEG copy, decoded once and cached as ``.npz``.

``load_cifar10(path=None)`` returns ``(x_train, y_train, x_test, y_test)``: images ``uint8 (N, 32, 32, 3)``
and labels ``int32 (N,)`` in the official class order (airplane, automobile, bird, cat, deer, dog, frog,
horse, ship, truck).

Accepted sources (``path`` may name any of them, or a folder that holds one):

* the official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``: python pickles), or its
  archive ``cifar-10-python.tar.gz``;
* the JPEG copy ``cifar10-jpeg.tar.gz`` (``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``) or the
  folder it unpacks to.

With ``path=None`` the places in :func:`search_paths` are tried in order (``$CIFAR10_DATA`` first). Decoded
arrays are cached under ``$JAXSCHED_CACHE`` (default ``~/.cache/jaxsched``), keyed by the source's path,
size and modification time, so a changed source is decoded again.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_ARCHIVES = ("cifar-10-python.tar.gz", "cifar10-jpeg.tar.gz")
_FOLDERS = ("cifar-10-batches-py", "cifar10-jpeg", "cifar10")


class DataNotFoundError(FileNotFoundError):
    """No CIFAR-10 source was found; the message lists where we looked."""


def cache_dir() -> Path:
    return Path(os.environ.get("JAXSCHED_CACHE", Path.home() / ".cache" / "jaxsched"))


def search_paths() -> list[Path]:
    """The places ``load_cifar10(None)`` looks, in order."""
    repo = Path(__file__).resolve().parents[2]
    roots = []
    if os.environ.get("CIFAR10_DATA"):
        roots.append(Path(os.environ["CIFAR10_DATA"]))
    roots += [Path.cwd() / "data", repo / "data", repo.parent / "shared" / "data", Path.home() / "data",
              Path.home() / ".cache" / "jaxsched" / "data", Path("/work/shared/data")]
    out = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def _kind(p: Path) -> str | None:
    """'pickle-dir', 'pickle-tar', 'jpeg-dir', 'jpeg-tar' or None for a path that is not a source."""
    if p.is_dir():
        if (p / "data_batch_1").is_file() and (p / "test_batch").is_file():
            return "pickle-dir"
        if (p / "train").is_dir() and (p / "test").is_dir():
            return "jpeg-dir"
        return None
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(p) as tf:
            for m in tf:
                name = m.name.lstrip("./")
                if name.endswith("data_batch_1"):
                    return "pickle-tar"
                if name.startswith(("train/", "test/")) and name.lower().endswith((".jpg", ".jpeg", ".png")):
                    return "jpeg-tar"
        return None
    return None


def find_source(path=None) -> tuple[Path, str]:
    """The CIFAR-10 source at ``path`` (a source or a folder holding one), else the first one found."""
    candidates = [Path(path).expanduser()] if path is not None else search_paths()
    looked = []
    for root in candidates:
        for p in [root] + [root / n for n in _FOLDERS + _ARCHIVES]:
            looked.append(str(p))
            if p.exists():
                kind = _kind(p)
                if kind:
                    return p, kind
    where = "\n  ".join(looked)
    raise DataNotFoundError(
        f"no CIFAR-10 data found{'' if path is None else f' at path={str(path)!r}'}. Looked in:\n  {where}\n"
        "Pass --data PATH (or set CIFAR10_DATA) pointing at the official 'cifar-10-batches-py' folder, its "
        "'cifar-10-python.tar.gz', or the JPEG copy 'cifar10-jpeg.tar.gz' (or the folder it unpacks to)."
    )


def _unpickle(fobj) -> tuple[np.ndarray, np.ndarray]:
    d = pickle.load(fobj, encoding="bytes")
    x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(d[b"labels"], np.int32)


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im.convert("RGB"), np.uint8)
    if a.shape != (32, 32, 3):
        raise ValueError(f"CIFAR-10 images must be 32x32 RGB, got an image of shape {a.shape}.")
    return a


def _pickle_source(p: Path, kind: str):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    parts = {}
    if kind == "pickle-dir":
        for n in names:
            with open(p / n, "rb") as f:
                parts[n] = _unpickle(f)
    else:
        with tarfile.open(p) as tf:
            for m in tf:
                base = m.name.rsplit("/", 1)[-1]
                if base in names:
                    parts[base] = _unpickle(tf.extractfile(m))
    missing = [n for n in names if n not in parts]
    if missing:
        raise ValueError(f"CIFAR-10 pickle source {str(p)!r} lacks {missing}.")
    x_tr = np.concatenate([parts[n][0] for n in names[:5]])
    y_tr = np.concatenate([parts[n][1] for n in names[:5]])
    return x_tr, y_tr, parts["test_batch"][0], parts["test_batch"][1]


def _jpeg_source(p: Path, kind: str):
    items = {"train": [], "test": []}

    def add(rel: str, data_fn):
        bits = rel.lstrip("./").split("/")
        if len(bits) != 3 or bits[0] not in items or not bits[2].lower().endswith((".jpg", ".jpeg", ".png")):
            return
        if bits[1] not in CLASSES:
            raise ValueError(f"CIFAR-10 JPEG source {str(p)!r}: unknown class folder {bits[1]!r} "
                             f"(expected one of {', '.join(CLASSES)}).")
        items[bits[0]].append((bits[1], bits[2], data_fn()))

    if kind == "jpeg-dir":
        for f in sorted(p.glob("*/*/*")):
            add(str(f.relative_to(p)).replace(os.sep, "/"), f.read_bytes)
    else:
        with tarfile.open(p) as tf:
            for m in tf:
                if m.isfile():
                    add(m.name, lambda m=m: tf.extractfile(m).read())
    out = []
    for split in ("train", "test"):
        entries = sorted(items[split], key=lambda t: (CLASSES.index(t[0]), t[1]))
        if not entries:
            raise ValueError(f"CIFAR-10 JPEG source {str(p)!r} has no {split}/<class>/*.jpg images.")
        out.append(np.stack([_decode(d) for _, _, d in entries]))
        out.append(np.asarray([CLASSES.index(c) for c, _, _ in entries], np.int32))
    return tuple(out)


def load_cifar10(path=None, *, cache: bool = True):
    """CIFAR-10 as ``(x_train, y_train, x_test, y_test)``: uint8 ``(N, 32, 32, 3)`` images, int32 labels.

    Args:
        path: a source (see the module docstring) or a folder holding one; ``None`` searches the usual
            places. Raises :class:`DataNotFoundError` listing them when nothing is found.
        cache: read/write the decoded arrays as ``.npz`` under :func:`cache_dir` (default True).
    """
    src, kind = find_source(path)
    st = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{kind}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"cifar10-{kind.split('-')[0]}-{key}.npz"
    if cache and cached.is_file():
        with np.load(cached) as z:
            return z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    arrays = _pickle_source(src, kind) if kind.startswith("pickle") else _jpeg_source(src, kind)
    if cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
        os.replace(tmp, cached)
    return arrays


def source_description(path=None) -> str:
    """A one-line name of the source ``load_cifar10(path)`` would read (for reports)."""
    src, kind = find_source(path)
    return f"{src.name} ({'JPEG copy' if kind.startswith('jpeg') else 'official python batches'})"
