"""CIFAR-10 loading: the official python batches or the JPEG copy, checked whole, decoded once and cached as
``.npz`` keyed by content. The safety rules (a restricted unpickler, gzip CRC, counts, named errors) are in the
README, "Data"."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_NAMES = ("cifar-10-batches-py", "cifar10-jpeg", "cifar10", "cifar-10-python.tar.gz", "cifar10-jpeg.tar.gz")
_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_IMAGE = (".jpg", ".jpeg", ".png")
#: images per class of the real data set: (train, test)
PER_CLASS = (5000, 1000)
_CACHE_VERSION = "2"


class DataNotFoundError(FileNotFoundError):
    """No CIFAR-10 source was found; the message lists where we looked."""


class DataError(ValueError):
    """A CIFAR-10 source is unsafe, damaged or incomplete; the message names the file."""


def cache_dir() -> Path:
    return Path(os.environ.get("JAXSCHED_CACHE", Path.home() / ".cache" / "jaxsched"))


def search_paths() -> list[Path]:
    """Where ``find_source(None)`` looks, in order; never the current folder nor any fixed machine path."""
    repo = Path(__file__).resolve().parents[2]
    roots = [Path(os.environ["CIFAR10_DATA"])] if os.environ.get("CIFAR10_DATA") else []
    return list(dict.fromkeys(roots + [repo / "data", repo.parent / "shared" / "data", cache_dir() / "data"]))


def _files(p: Path, pattern: str = "*"):
    """``(path inside the source, read, where)`` for every file of a tar archive or of a folder (``pattern``)."""
    if p.is_dir():
        for f in sorted(p.glob(pattern)):
            if f.is_file():
                yield str(f.relative_to(p)).replace(os.sep, "/"), f.read_bytes, repr(str(f))
        return
    try:
        with tarfile.open(p) as tf:
            for m in tf:
                if m.isfile():
                    yield m.name.lstrip("./"), tf.extractfile(m).read, f"{m.name!r} in {str(p)!r}"  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"CIFAR-10 archive {str(p)!r} is damaged: {e}") from None


def _kind(p: Path) -> str | None:
    """'pickle-dir', 'pickle-tar', 'jpeg-dir', 'jpeg-tar' or None for a path that is not a source."""
    if p.is_dir():
        if (p / "data_batch_1").is_file() and (p / "test_batch").is_file():
            return "pickle-dir"
        return "jpeg-dir" if (p / "train").is_dir() and (p / "test").is_dir() else None
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz", ".tar")):
        for name, _, _ in _files(p):
            if name.endswith("data_batch_1"):
                return "pickle-tar"
            if name.startswith(("train/", "test/")) and name.lower().endswith(_IMAGE):
                return "jpeg-tar"
    return None


def find_source(path=None) -> tuple[Path, str]:
    """The CIFAR-10 source at ``path`` (a source or a folder holding one), else the first one found in
    :func:`search_paths`, with its kind."""
    looked = []
    for root in [Path(path).expanduser()] if path is not None else search_paths():
        for p in [root] + [root / n for n in _NAMES]:
            looked.append(str(p))
            if kind := _kind(p):
                return p, kind
    where = "\n  ".join(looked)
    raise DataNotFoundError(
        f"no CIFAR-10 data found{'' if path is None else f' at path={str(path)!r}'}. Looked in:\n  {where}\n"
        "Pass --data PATH (or set CIFAR10_DATA) pointing at the official 'cifar-10-batches-py' folder, its "
        "'cifar-10-python.tar.gz', or the JPEG copy 'cifar10-jpeg.tar.gz' (or the folder it unpacks to).")


def describe(src: Path, kind: str) -> str:
    """A one-line name of a source found by :func:`find_source` (for reports)."""
    return f"{src.name} ({'JPEG copy' if kind.startswith('jpeg') else 'official python batches'})"


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"only numpy.ndarray may be rebuilt, not {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(spec, align=False, copy=False):
    dt = np.dtype(spec)
    if dt.hasobject or dt.kind not in "biuf":
        raise pickle.UnpicklingError(f"only numeric array dtypes are allowed, not {dt!r}")
    return dt


def _frombuffer(buf, dtype, shape, order):
    return np.frombuffer(bytes(buf), dtype=_dtype(dtype)).reshape(shape, order=order).copy()


def _latin1(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, and only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin1 bytes")
    return text.encode("latin1")


class SafeUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and nothing else: the only globals admitted are numpy's array rebuilders and
    protocol 2's latin1 ``_codecs.encode``, through wrappers that accept numeric dtypes only; any other raises
    ``pickle.UnpicklingError`` before it is called."""

    _ALLOWED: ClassVar[dict] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module, name):
        fn = self._ALLOWED.get((module, name))
        if fn is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return fn


def _unpickle(read, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's uint8 images ``(N, 32, 32, 3)`` and int32 labels, checked."""
    try:
        d = SafeUnpickler(io.BytesIO(read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, zlib.error, OSError, tarfile.TarError) as e:
        raise DataError(f"CIFAR-10 batch {where} is not a safe CIFAR-10 pickle ({type(e).__name__}: {e}); "
                        "refusing it.") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DataError(f"CIFAR-10 batch {where} does not hold the b'data' and b'labels' entries of a "
                        "CIFAR-10 batch.")
    data, labels = d[b"data"], d[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"CIFAR-10 batch {where}: b'data' must be a uint8 array of shape (N, 3072), got "
                        f"{type(data).__name__} of shape {getattr(data, 'shape', None)}.")
    if not isinstance(labels, list) or len(labels) != len(data) or \
            not all(isinstance(v, int) and 0 <= v < 10 for v in labels):
        raise DataError(f"CIFAR-10 batch {where}: b'labels' must be a list of {len(data)} integers in 0..9.")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), np.asarray(labels, np.int32)


def _decode(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            a = np.asarray(im.convert("RGB"), np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, MemoryError) as e:  # Pillow's damage errors
        raise DataError(f"CIFAR-10 image {where} cannot be decoded ({type(e).__name__}: {e}).") from None
    if a.shape != (32, 32, 3):
        raise DataError(f"CIFAR-10 image {where} must be 32x32 RGB, got an image of shape {a.shape}.")
    return a


def verify_archive(p: Path) -> None:
    """Read a gzip archive to its end so that its CRC and length are checked (plain ``.tar`` has no checksum)."""
    with open(p, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return
    try:
        with gzip.open(p, "rb") as g:
            while g.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"CIFAR-10 archive {str(p)!r} is damaged or truncated ({type(e).__name__}: {e}); "
                        "download or copy it again.") from None


def content_key(p: Path, kind: str) -> str:
    """SHA-256 of the source's bytes (an archive, or every file of a folder by relative path)."""
    h = hashlib.sha256(f"{kind}|{_CACHE_VERSION}".encode())
    for f in [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()):
        h.update(str(f.relative_to(p) if f != p else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def check_counts(arrays, per_class=PER_CLASS, where: str = "") -> None:
    """Every class must have exactly ``per_class[0]`` training and ``per_class[1]`` test images."""
    for split, y, want in (("train", arrays[1], per_class[0]), ("test", arrays[3], per_class[1])):
        counts = np.bincount(np.asarray(y, np.int64), minlength=10)[:10]
        if len(y) != 10 * want or (counts != want).any():
            short = {CLASSES[c]: int(n) for c, n in enumerate(counts) if n != want}
            raise DataError(f"CIFAR-10 source {where}: the {split} split has {len(y):,} images, expected "
                            f"{10 * want:,} ({want:,} per class); classes with other counts: {short}. The "
                            "source is incomplete or damaged.")


def first_per_class(y: np.ndarray, n: int | None) -> np.ndarray:
    """Indices of the first ``n`` images of every class, in their order (all when ``n`` is None)."""
    if n is None:
        return np.arange(len(y))
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)]))


def _pickle_source(p: Path, use, per_class):
    parts = {name.rsplit("/", 1)[-1]: _unpickle(read, where) for name, read, where in _files(p)
             if name.rsplit("/", 1)[-1] in _BATCHES}
    missing = [n for n in _BATCHES if n not in parts]
    if missing:
        raise DataError(f"CIFAR-10 pickle source {str(p)!r} lacks {missing}.")
    x_tr, y_tr = (np.concatenate([parts[n][i] for n in _BATCHES[:5]]) for i in (0, 1))
    arrays = (x_tr, y_tr, *parts["test_batch"])
    check_counts(arrays, per_class, repr(str(p)))
    keep = [first_per_class(arrays[1], use[0]), first_per_class(arrays[3], use[1])]
    return arrays[0][keep[0]], arrays[1][keep[0]], arrays[2][keep[1]], arrays[3][keep[1]]


def _jpeg_source(p: Path, use, per_class):
    """Every image is read (an archive to its end) and counted, only those ``use`` keeps are decoded."""
    items: dict[str, list] = {"train": [], "test": []}
    for name, read, where in _files(p, "*/*/*"):
        bits = name.split("/")
        if len(bits) != 3 or bits[0] not in items or not bits[2].lower().endswith(_IMAGE):
            continue
        if bits[1] not in CLASSES:
            raise DataError(f"CIFAR-10 JPEG source {str(p)!r}: unknown class folder {bits[1]!r} "
                            f"(expected one of {', '.join(CLASSES)}).")
        items[bits[0]].append((CLASSES.index(bits[1]), bits[2], read(), where))
    for split, entries in items.items():
        if not entries:
            raise DataError(f"CIFAR-10 JPEG source {str(p)!r} has no {split}/<class>/*.jpg images.")
        entries.sort(key=lambda t: t[:2])
    labels = {split: np.asarray([t[0] for t in entries], np.int32) for split, entries in items.items()}
    check_counts((None, labels["train"], None, labels["test"]), per_class, repr(str(p)))
    out = []
    for split, n in zip(("train", "test"), use, strict=True):
        keep = first_per_class(labels[split], n)
        out += [np.stack([_decode(*items[split][i][2:]) for i in keep]), labels[split][keep]]
    return tuple(out)


def load_cifar10(path=None, *, cache: bool = True, per_class: tuple[int, int] = PER_CLASS,
                 use: tuple[int | None, int | None] = (None, None)):
    """CIFAR-10 as ``(x_train, y_train, x_test, y_test)``: uint8 ``(N, 32, 32, 3)`` images, int32 labels.

    Args:
        path: a source or a folder holding one; ``None`` searches :func:`search_paths`.
        cache: read/write the decoded arrays as ``.npz`` under :func:`cache_dir`, keyed by the source's content.
        per_class: the (train, test) images every class must have (other counts raise :class:`DataError`).
        use: ``(n_train, n_test)``: return only the first N images of every class (``None``: all); the whole
            source is still read, checked and counted.
    """
    src, kind = find_source(path)
    if src.is_file():
        verify_archive(src)
    for name, n, full in zip(("train", "test"), use, per_class, strict=True):
        if n is not None and not 1 <= n <= full:
            raise ValueError(f"use: the {name} images per class must be between 1 and {full} or None, got {n!r}.")
    # a count equal to the whole class is the whole set (one cache file for both spellings)
    use = tuple(None if n == full else n for n, full in zip(use, per_class))
    part = "" if use == (None, None) else "-first" + "x".join("all" if n is None else str(n) for n in use)
    want = tuple(full if n is None else n for n, full in zip(use, per_class))
    cached = cache_dir() / f"cifar10-{kind.split('-')[0]}-{content_key(src, kind)[:24]}{part}.npz"
    if cache and cached.is_file():
        try:
            with np.load(cached) as z:
                arrays = (z["x_train"], z["y_train"], z["x_test"], z["y_test"])
            check_counts(arrays, want, repr(str(src)))
            return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError):
            cached.unlink(missing_ok=True)  # a damaged cache file (checked when written) is decoded again
    arrays = (_pickle_source if kind.startswith("pickle") else _jpeg_source)(src, use, per_class)
    check_counts(arrays, want, repr(str(src)))
    if cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
        os.replace(tmp, cached)
    return arrays
