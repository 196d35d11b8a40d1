"""Smoke test of the benchmark (``python -m benchmarks.schedules --quick``): it runs end to end and writes
well-formed results. No timing is asserted: timings are the benchmark's output, not a property to test."""

import json
import math

import pytest

import jaxsched
from benchmarks import schedules as bench

pytestmark = pytest.mark.slow  # runs `python -m benchmarks.schedules --quick` end to end (minutes)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    res = bench.main(["--out", str(out), "--quick"])
    return out, res


def _summaries(tree):
    """Every ``{"median_ms", "min_ms", "max_ms", "n"}`` summary in the results."""
    if isinstance(tree, dict):
        if "median_ms" in tree:
            yield tree
        else:
            for v in tree.values():
                yield from _summaries(v)


def test_writes_json_that_matches_what_main_returns(quick):
    out, res = quick
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["meta"]["config"]["quick"] is True
    assert on_disk["meta"]["argv"] == ["--out", str(out), "--quick"]
    assert set(on_disk) >= {"meta", "trajectory", "compile", "train", "schedule_loop", "torch", "targets"}
    assert on_disk["targets"] == json.loads(json.dumps(res["targets"]))


def test_every_timing_is_a_positive_finite_summary(quick):
    _, res = quick
    sums = list(_summaries({k: res[k] for k in ("trajectory", "compile", "train", "schedule_loop", "torch")}))
    assert len(sums) > 50
    for s in sums:
        assert s["n"] >= 1
        assert 0 < s["min_ms"] <= s["median_ms"] <= s["max_ms"] and math.isfinite(s["max_ms"]), s


def test_every_schedule_class_has_a_trajectory_row_and_an_optax_comparison(quick):
    _, res = quick
    benched = {type(c.schedule).__name__ for c in bench.cases(1000)}
    assert benched == set(jaxsched.SCHEDULES), "add the new schedule to benchmarks.schedules.cases()"
    rows = res["trajectory"]
    for c in bench.cases(1000):
        assert f"jaxsched/{c.label}" in rows
        assert c.optax and all(f"optax/{c.label}/{k}" in rows for k in c.optax)
    for b in ("floor: write N float32", "bare jnp.cos over the steps"):
        assert f"baseline/{b}" in rows


def test_targets_are_well_formed(quick):
    _, res = quick
    sections = {t["section"] for t in res["targets"]}
    assert sections == {"a", "b", "c", "d"}
    for t in res["targets"]:
        assert isinstance(t["met"], bool)
        assert all(math.isfinite(t["ratio"][k]) for k in ("best", "median", "min", "max"))
        assert (t["missed_by"] is None) == t["met"]


def test_markdown_has_every_section_and_every_target(quick):
    out, res = quick
    md = (out / "results.md").read_text()
    for heading in ("## (a)", "## Targets", "## (c)", "## (d) torch"):
        assert heading in md
    assert res["meta"]["date"] in md
    for t in res["targets"]:
        assert f"| {t['what']} |" in md
    for t in res["targets"]:
        if not t["met"]:
            assert f"**{t['what']}**" in md  # every miss is explained under "Missed targets"


def test_the_schedules_benchmarked_are_the_real_ones():
    """The trajectory rows compute the right values: jaxsched rows against the schedule, optax rows are finite
    and within 1% of the LR scale of their jaxsched row where the construction is exact (not the naive ones)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    n = 2000
    cs, fns = bench._candidates(n)
    e = jnp.arange(n, dtype=jnp.int32)
    for c in cs:
        ours = np.asarray(jax.jit(fns[f"jaxsched/{c.label}"])(e))
        eager = np.asarray(c.schedule(e))
        np.testing.assert_allclose(ours, eager, rtol=0, atol=1e-6 * float(np.max(np.abs(eager))))
        for k in c.optax:
            theirs = np.asarray(jax.jit(fns[f"optax/{c.label}/{k}"])(e))
            assert theirs.shape == ours.shape
            if "naive" not in k and "CyclicLR" not in c.label:
                scale = float(np.max(np.abs(ours)))
                assert np.max(np.abs(theirs - ours)) <= 1e-2 * scale, (c.label, k)
