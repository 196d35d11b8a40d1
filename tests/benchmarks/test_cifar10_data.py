"""CIFAR-10 data safety and wholeness: pickles that would run code are refused, damaged or incomplete
archives raise an error naming the file, and the search never looks in the current folder."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import REPO, fake_arrays, tar_gz, write_jpeg_dir, write_pickle_dir

from benchmarks.cifar10 import data as cdata

SMALL = (16, 8)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSCHED_CACHE", str(tmp_path / "cache"))


class RunsCode:
    """Unpickling this calls os.system (what a crafted data_batch file can do to pickle.load)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    src = write_pickle_dir(tmp_path / "src", fake_arrays())
    marker = tmp_path / "pwned"
    (src / "data_batch_3").write_bytes(pickle.dumps({b"data": RunsCode(marker), b"labels": [0]}))
    # the plain unpickler would run it (this is what the test guards against)
    with pytest.raises(cdata.DataError, match=r"data_batch_3.*posix.system|data_batch_3.*os.system") as err:
        cdata.load_cifar10(src, per_class=SMALL)
    assert "refusing" in str(err.value) and str(src / "data_batch_3") in str(err.value)
    assert not marker.exists()
    # the same inside an archive: refused, the member and the archive named
    tgz = tar_gz(src, tmp_path / "cifar-10-python.tar.gz", True)
    with pytest.raises(cdata.DataError, match=r"data_batch_3.*cifar-10-python\.tar\.gz"):
        cdata.load_cifar10(tgz, per_class=SMALL)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    {b"data": np.array([object()] * 3072, dtype=object).reshape(1, 3072), b"labels": [0]},  # object array
    {b"data": np.zeros((1, 3072), np.float32), b"labels": [0]},  # wrong dtype
    {b"data": np.zeros((1, 3072), np.uint8), b"labels": [11]},  # label out of range
    [1, 2, 3],  # not a dict
])
def test_batches_that_are_not_cifar10_are_refused(tmp_path, payload):
    src = write_pickle_dir(tmp_path / "src", fake_arrays())
    (src / "test_batch").write_bytes(pickle.dumps(payload))
    with pytest.raises(cdata.DataError, match=r"test_batch"):
        cdata.load_cifar10(src, per_class=SMALL)


def test_safe_unpickler_reads_arrays_of_both_protocols():
    x = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for proto in (2, 4, 5):
        blob = pickle.dumps({b"data": x, b"labels": [1, 2], b"batch_label": b"b"}, protocol=proto)
        got = cdata.SafeUnpickler(io.BytesIO(blob), encoding="bytes").load()
        np.testing.assert_array_equal(got[b"data"], x)


@pytest.fixture(scope="module")
def jpeg_tgz(tmp_path_factory):
    root = tmp_path_factory.mktemp("jt")
    return tar_gz(write_jpeg_dir(root, fake_arrays()), root / "cifar10-jpeg.tar.gz", False)


def test_truncated_archive_names_the_file(tmp_path, jpeg_tgz):
    blob = jpeg_tgz.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 4):
        bad = tmp_path / f"cut{cut}" / "cifar10-jpeg.tar.gz"
        bad.parent.mkdir()
        bad.write_bytes(blob[:cut])
        with pytest.raises(cdata.DataError, match=r"cifar10-jpeg\.tar\.gz.*(damaged|truncated)") as err:
            cdata.load_cifar10(bad, per_class=SMALL)
        assert str(bad) in str(err.value)
        assert not list((tmp_path / "cache").glob("*.npz"))  # nothing cached


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75, -2])
def test_flipped_bit_is_caught_and_not_cached(tmp_path, jpeg_tgz, where):
    blob = bytearray(jpeg_tgz.read_bytes())
    i = int(len(blob) * where) if where > 0 else len(blob) + where  # -2: the length field of the trailer
    blob[i] ^= 0x10
    bad = tmp_path / "cifar10-jpeg.tar.gz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(cdata.DataError) as err:
        cdata.load_cifar10(bad, per_class=SMALL)
    assert str(bad) in str(err.value)
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_intact_archive_still_loads(jpeg_tgz):
    x_tr, y_tr, x_te, y_te = cdata.load_cifar10(jpeg_tgz, per_class=SMALL)
    assert x_tr.shape == (160, 32, 32, 3) and np.bincount(y_te).tolist() == [8] * 10


def test_missing_class_or_wrong_counts_are_refused(tmp_path):
    arrays = fake_arrays()
    j = write_jpeg_dir(tmp_path / "j", arrays)
    # the full set is expected by default: 160 images are not CIFAR-10
    with pytest.raises(cdata.DataError, match=r"train split has 160 images, expected 50,000 \(5,000 per class\)"):
        cdata.load_cifar10(j)
    for f in (j / "train" / "cat").iterdir():
        f.unlink()
    (j / "train" / "cat").rmdir()
    tgz = tar_gz(j, tmp_path / "cifar10-jpeg.tar.gz", False)
    with pytest.raises(cdata.DataError, match=r"144 images, expected 160 .*'cat': 0") as err:
        cdata.load_cifar10(tgz, per_class=SMALL)
    assert str(tgz) in str(err.value)


def test_damaged_image_is_named(tmp_path):
    j = write_jpeg_dir(tmp_path / "j", fake_arrays())
    bad = j / "test" / "dog" / "0003.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(cdata.DataError, match=r"test/dog/0003\.jpg.*cannot be decoded"):
        cdata.load_cifar10(j, per_class=SMALL)


def test_search_skips_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    write_pickle_dir(tmp_path / "data", fake_arrays())
    monkeypatch.setenv("JAXSCHED_CACHE", str(tmp_path.parent / "elsewhere"))
    assert all(Path.cwd() not in (p, *p.parents) for p in cdata.search_paths())
    assert tmp_path / "data" not in cdata.search_paths()


def test_search_has_no_machine_path(tmp_path, monkeypatch):
    """Only --data, $CIFAR10_DATA, the repository's data/, ../shared/data and the user's cache."""
    monkeypatch.setenv("CIFAR10_DATA", str(tmp_path / "env"))
    assert cdata.search_paths() == [tmp_path / "env", REPO / "data", REPO.parent / "shared" / "data",
                                    tmp_path / "cache" / "data"]


def test_plain_tar_member_list_damage_is_named(tmp_path):
    src = write_pickle_dir(tmp_path / "src", fake_arrays())
    tar = tmp_path / "cifar-10-python.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(src, arcname=src.name)
    blob = tar.read_bytes()
    tar.write_bytes(blob[: len(blob) // 2])  # no gzip CRC here: the missing batches are what is caught
    with pytest.raises(cdata.DataError, match=r"cifar-10-python\.tar"):
        cdata.load_cifar10(tar, per_class=SMALL)


@pytest.mark.parametrize("kind", ["jpeg", "pickle"])
def test_a_subset_decodes_and_caches_only_its_images(tmp_path, kind):
    """The smoke preset's loading: the first N images per class, decoded and cached alone; the whole source
    is still counted, so a missing class is refused even when the subset would not need it."""
    arrays = fake_arrays()
    src = (write_jpeg_dir if kind == "jpeg" else write_pickle_dir)(tmp_path / "src", arrays)
    full = cdata.load_cifar10(src, per_class=SMALL, cache=False)
    x_tr, y_tr, x_te, y_te = cdata.load_cifar10(src, per_class=SMALL, use=(3, 2))
    assert np.bincount(y_tr).tolist() == [3] * 10 and np.bincount(y_te).tolist() == [2] * 10
    for x, y, fx, fy in ((x_tr, y_tr, full[0], full[1]), (x_te, y_te, full[2], full[3])):
        for c in range(10):  # the first images of every class, in the source's order
            np.testing.assert_array_equal(x[y == c], fx[fy == c][: int((y == c).sum())])
    cached = sorted(p.name for p in (tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1 and cached[0].endswith("-first3x2.npz")
    with np.load(tmp_path / "cache" / cached[0]) as z:
        assert z["x_train"].shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(cdata.load_cifar10(src, per_class=SMALL, use=(3, 2))[0], x_tr)  # from the cache
    with pytest.raises(ValueError, match=r"use: the train images per class must be between 1 and 16 or None, got 17"):
        cdata.load_cifar10(src, per_class=SMALL, use=(17, None))
    if kind == "jpeg":
        for f in (src / "train" / "cat").iterdir():
            f.unlink()
        with pytest.raises(cdata.DataError, match=r"'cat': 0"):
            cdata.load_cifar10(src, per_class=SMALL, use=(3, 2))


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    arrays = fake_arrays()
    p = write_pickle_dir(root / "p", arrays)
    j = write_jpeg_dir(root / "j", arrays)
    return {"arrays": arrays, "pickle-dir": p, "pickle-tar": tar_gz(p, root / "cifar-10-python.tar.gz", True),
            "jpeg-dir": j, "jpeg-tar": tar_gz(j, root / "cifar10-jpeg.tar.gz", False), "root": root}


@pytest.mark.parametrize("kind", ["pickle-dir", "pickle-tar", "jpeg-dir", "jpeg-tar"])
def test_load_each_format(fake, kind):
    x_tr, y_tr, x_te, y_te = cdata.load_cifar10(fake[kind], per_class=(16, 8))
    ex_tr, ey_tr, ex_te, ey_te = fake["arrays"]
    assert x_tr.dtype == np.uint8 and x_tr.shape == (160, 32, 32, 3) and x_te.shape == (80, 32, 32, 3)
    assert y_tr.dtype == np.int32
    if kind.startswith("pickle"):  # lossless: exactly the arrays, in file order
        np.testing.assert_array_equal(x_tr, ex_tr)
        np.testing.assert_array_equal(y_te, ey_te)
    else:  # JPEG: ordered by class then file name; pixels within JPEG error
        order = np.argsort(ey_tr, kind="stable")
        np.testing.assert_array_equal(y_tr, ey_tr[order])
        # noise does not survive JPEG, each image's mean colour does (and pairs it with its original)
        got, want = x_tr.mean(axis=(1, 2)), ex_tr[order].mean(axis=(1, 2))
        assert np.abs(got - want).max() < 4
        assert np.bincount(y_te).tolist() == [8] * 10


def test_cache_is_keyed_on_content(fake, tmp_path):
    src = write_pickle_dir(tmp_path / "src", fake_arrays(seed=1))
    first = cdata.load_cifar10(src, per_class=(16, 8))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    # the same content again (even with new modification times): the cache is used, nothing new written
    os.utime(src / "test_batch", ns=(1, 1))
    np.testing.assert_array_equal(cdata.load_cifar10(src, per_class=(16, 8))[2], first[2])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    # overwrite a file in place, keeping its size and modification time: the new content is decoded
    new = fake_arrays(seed=2)
    blob = {b"data": new[2].transpose(0, 3, 1, 2).reshape(80, -1), b"labels": new[3].tolist()}
    st = os.stat(src / "test_batch")
    (src / "test_batch").write_bytes(pickle.dumps(blob))
    os.utime(src / "test_batch", ns=(st.st_atime_ns, st.st_mtime_ns))
    np.testing.assert_array_equal(cdata.load_cifar10(src, per_class=(16, 8))[2], new[2])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_not_found_says_where_and_what(tmp_path, monkeypatch):
    monkeypatch.setattr(cdata, "search_paths", lambda: [tmp_path / "nowhere"])
    with pytest.raises(cdata.DataNotFoundError) as err:
        cdata.load_cifar10()
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg and "--data" in msg
    with pytest.raises(cdata.DataNotFoundError, match=r"at path='.*empty'"):
        (tmp_path / "empty").mkdir()
        cdata.load_cifar10(tmp_path / "empty")


def test_search_finds_env_source(fake, monkeypatch):
    monkeypatch.setenv("CIFAR10_DATA", str(fake["root"] / "j"))
    assert cdata.find_source(None) == (fake["jpeg-dir"], "jpeg-dir")
