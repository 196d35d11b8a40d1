"""jaxsched.checkpoint verifies the arrays it restores: orbax does not checksum array data, so a flipped byte in
a saved data file would otherwise restore as a wrong value without an error."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import jaxsched
from jaxsched import checkpoint


def _state():
    s = jaxsched.StepLR(0.1, step_size=2)
    params = {"w": jnp.arange(1000, dtype=jnp.float32), "b": jnp.zeros(3)}
    return s, {"params": params, "opt": optax.sgd(s).init(params), "key": jax.random.key(0)}


def _flip_a_byte(directory: Path) -> None:
    data = max((f for f in (directory / checkpoint.STATE_ITEM).rglob("*") if f.is_file()),
               key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    data.write_bytes(bytes(raw))


def test_restore_gives_back_what_was_saved_and_refuses_a_flipped_byte(tmp_path):
    s, st = _state()
    checkpoint.save(tmp_path / "c", st, s)
    out = checkpoint.restore(tmp_path / "c", st, s)
    np.testing.assert_array_equal(out["params"]["w"], st["params"]["w"])
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(st["key"]))
    _flip_a_byte(tmp_path / "c")
    with pytest.raises(checkpoint.CheckpointDamagedError, match=r"the array \['params'\]\['w'\] restored from .* "
                       r"differs from the one saved \(SHA-256 mismatch\)"):
        checkpoint.restore(tmp_path / "c", st, s)


def test_manager_items_carry_the_digests(tmp_path):
    s, st = _state()
    with ocp.CheckpointManager(tmp_path / "mgr") as mgr:
        mgr.save(1, args=checkpoint.save_args(st, s))
        mgr.wait_until_finished()
        out = mgr.restore(1, args=checkpoint.restore_args(st))
    checkpoint.check_digests(out.digests, out.state)
    changed = jax.tree.map(lambda a: a, out.state)
    changed["params"]["b"] = changed["params"]["b"].at[1].set(1.0)
    with pytest.raises(checkpoint.CheckpointDamagedError, match=r"\['params'\]\['b'\]"):
        checkpoint.check_digests(out.digests, changed)


def test_digest_covers_dtype_and_shape():
    a, b = checkpoint.digests({"x": np.zeros(4, np.float32)}), checkpoint.digests({"x": np.zeros((2, 2), np.float32)})
    assert a["['x']"]["digest"] != b["['x']"]["digest"]
    # a state restored into another float dtype than saved is compared in the saved dtype
    checkpoint.check_digests(a, {"x": np.zeros(4, np.float64)})
