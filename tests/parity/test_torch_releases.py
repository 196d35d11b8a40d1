"""torch release awareness: ``python -m parity releases``, ``from_torch`` under older releases, and
``SequentialLR(..., release=...)``.

No network: the releases a test runs are built here from the installed torch's own scheduler files, with the
lines that differ in that release changed back (for 2.12.1, the three lines of its SequentialLR constructor,
which are all that differs in its ``lr_scheduler.py`` from 2.13.0 apart from comments and docstrings).
"""

from __future__ import annotations

import json
import re
import urllib.error
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import torch.optim.lr_scheduler as installed_lr_scheduler
import torch.optim.swa_utils as installed_swa_utils

import jaxsched
from jaxsched import _torch_releases
from jaxsched._torch_releases import TorchReleaseError
from parity import releases
from parity.__main__ import main as parity_main

STEPS = 300

# torch 2.12.1's SequentialLR constructor: the initial step always goes to the first scheduler.
_NEW_INIT = (
    "        # Perform the initial step for only the scheduler meant to run at step 0.\n"
    "        idx = bisect_right(self._milestones, 0)\n"
    "        self._schedulers[idx]._initial_step()\n"
)
_OLD_INIT = ("        # Perform the initial step for only the first scheduler\n"
             "        self._schedulers[0]._initial_step()\n")


def _installed_source(module) -> str:
    return Path(module.__file__).read_text()


def _write_release(cache: Path, version: str, lr_scheduler: str) -> Path:
    folder = cache / version
    folder.mkdir(parents=True)
    (folder / "lr_scheduler.py").write_text(lr_scheduler)
    (folder / "swa_utils.py").write_text(_installed_source(installed_swa_utils))
    return folder


@pytest.fixture(scope="module")
def release_2_12(tmp_path_factory):
    """torch 2.12.1's SequentialLR code path on the installed torch: the installed source, its one change undone."""
    source = _installed_source(installed_lr_scheduler)
    assert source.count(_NEW_INIT) == 1, "the installed torch's SequentialLR is not 2.13's: update this fixture"
    source = source.replace(_NEW_INIT, _OLD_INIT)
    source = source.replace("schedulers[idx].get_last_lr()", "schedulers[0].get_last_lr()")
    folder = _write_release(tmp_path_factory.mktemp("cache"), "2.12.1", source)
    return releases.load("2.12.1", folder)


def _run(build, L, steps=STEPS, upto=None):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=0.1, momentum=0.9)
    sched = build(L, opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps if upto is None else upto):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return sched, np.asarray(lrs)


def _values(s, n=STEPS + 1):
    with jax.enable_x64(True):
        return np.asarray(s(np.arange(n)), np.float64)


MILESTONE0 = {
    "cosine": (lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
                                               L.CosineAnnealingLR(o, T_max=100)], [0]),
               lambda: jaxsched.SequentialLR([jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                              jaxsched.CosineAnnealingLR(0.1, T_max=100)], milestones=[0])),
    "exponential": (lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, factor=0.5, total_iters=10),
                                                    L.ExponentialLR(o, 0.99)], [0]),
                    lambda: jaxsched.SequentialLR([jaxsched.ConstantLR(0.1, factor=0.5, total_iters=10),
                                                   jaxsched.ExponentialLR(0.1, gamma=0.99)], milestones=[0])),
    "step, then exponential": (
        lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.StepLR(o, 30),
                                        L.ExponentialLR(o, 0.9)], [0, 120]),
        lambda: jaxsched.SequentialLR([jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                       jaxsched.StepLR(0.1, step_size=30), jaxsched.ExponentialLR(0.1, gamma=0.9)],
                                      milestones=[0, 120])),
    "polynomial": (lambda L, o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
                                                   L.PolynomialLR(o, total_iters=100, power=2.0)], [0]),
                   lambda: jaxsched.SequentialLR([jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                                  jaxsched.PolynomialLR(0.1, total_iters=100, power=2.0)],
                                                 milestones=[0])),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if i >= 2 else [])
                                  for i, n in enumerate(MILESTONE0)])
def test_release_field_reproduces_2_12_milestone0(release_2_12, name):
    torch_build, jax_build = MILESTONE0[name]
    _, old = _run(torch_build, release_2_12.lr_scheduler)
    _, new = _run(torch_build, installed_lr_scheduler)
    s = jax_build()
    legacy = jaxsched.SequentialLR(list(s.schedulers), milestones=list(s.milestones), release="2.12.1")
    np.testing.assert_allclose(_values(legacy), old, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_values(jax_build()), new, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(old - new)) > 1e-3  # the fixture really is another sequence


def test_release_field_under_jit_and_running(release_2_12):
    torch_build, jax_build = MILESTONE0["cosine"]
    _, old = _run(torch_build, release_2_12.lr_scheduler, steps=40)
    s = jaxsched.SequentialLR(list(jax_build().schedulers), milestones=[0], release="2.12.1")
    with jax.enable_x64(True):
        jitted = np.asarray([jax.jit(s)(k) for k in range(41)])
        r = jaxsched.Running(s)
        st, run = r.init(), []
        for _ in range(41):
            run.append(float(r(st)))
            st = r.update(st)
    np.testing.assert_allclose(jitted, old, rtol=1e-12)
    np.testing.assert_allclose(run, old, rtol=1e-12)


def test_from_torch_converts_2_12_milestone0(release_2_12, monkeypatch):
    torch_build, _ = MILESTONE0["cosine"]
    _, old = _run(torch_build, release_2_12.lr_scheduler)
    monkeypatch.setattr(torch, "__version__", "2.12.1")
    monkeypatch.setitem(__import__("sys").modules, "torch.optim.lr_scheduler", release_2_12.lr_scheduler)
    for k in (0, 7):
        sched, _ = _run(torch_build, release_2_12.lr_scheduler, upto=k)
        with jax.enable_x64(True):
            s = jaxsched.from_torch(sched)
        inner = s.schedule if isinstance(s, jaxsched.Offset) else s
        assert inner.release == "2.12.1"
        np.testing.assert_allclose(_values(s, STEPS + 1 - k), old[k:], rtol=1e-12, atol=1e-15)


def test_from_torch_milestone0_on_2_13_is_not_legacy():
    torch_build, _ = MILESTONE0["cosine"]
    sched, lrs = _run(torch_build, installed_lr_scheduler, upto=0)
    s = jaxsched.from_torch(sched)
    assert s.release is None


def _seq(L, S, opt, member: str, milestone: int):
    second = {"multiplicative": lambda: L.MultiplicativeLR(opt, lambda e: 0.98),
              "swalr": lambda: S.SWALR(opt, swa_lr=0.05, anneal_epochs=10)}[member]()
    return L.SequentialLR(opt, [L.LinearLR(opt, start_factor=0.1, total_iters=5), second], [milestone])


@pytest.mark.parametrize(("member", "refused", "accepted", "since"), [
    ("multiplicative", "2.7.1", "2.8.0", "2.8"), ("swalr", "2.8.0", "2.9.1", "2.9")])
def test_from_torch_refuses_member_differences_by_release(monkeypatch, member, refused, accepted, since):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = _seq(installed_lr_scheduler, installed_swa_utils, opt, member, 5)
    monkeypatch.setattr(torch, "__version__", refused)
    with pytest.raises(TorchReleaseError, match=rf"torch {re.escape(refused)} computes another LR sequence.*"
                                                rf"changed in torch {re.escape(since)}\."):
        jaxsched.from_torch(sched)
    monkeypatch.setattr(torch, "__version__", accepted)
    jaxsched.from_torch(sched)


def test_from_torch_refuses_torch_1(monkeypatch):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = installed_lr_scheduler.StepLR(opt, 3)
    monkeypatch.setattr(torch, "__version__", "1.13.1")
    with pytest.raises(TorchReleaseError, match=r"torch 1\.13\.1 is older than 2\.0"):
        jaxsched.from_torch(sched)


def test_from_torch_refuses_cawr_resume_before_2_8(monkeypatch):
    """torch <= 2.7 leaves T_cur >= T_i after a resume with last_epoch >= 2 T_0 (T_cur - T_i, not % T_i)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = installed_lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)
    sched.T_cur = 16  # what torch 2.7.1's constructor leaves for last_epoch=25 (measured by parity releases)
    monkeypatch.setattr(torch, "__version__", "2.7.1")
    with pytest.raises(TorchReleaseError, match=r"T_cur=16 >= T_i=10.*changed in torch 2\.8\."):
        jaxsched.from_torch(sched)


def test_from_torch_reads_onecycle_of_2_3(monkeypatch):
    """torch <= 2.3 keeps OneCycleLR's annealing as the bound method ``anneal_func``, no ``_anneal_func_type``."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched = installed_lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100, anneal_strategy="linear")
    want = jaxsched.from_torch(sched)
    del sched._anneal_func_type
    sched.anneal_func = sched._annealing_linear
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    assert jaxsched.from_torch(sched) == want


def test_from_torch_reads_plateau_of_2_5(monkeypatch):
    """torch <= 2.5's ReduceLROnPlateau has ``min_lrs`` only (no ``default_min_lr``)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = installed_lr_scheduler.ReduceLROnPlateau(opt, patience=2, min_lr=1e-3)
    want, _ = jaxsched.from_torch(sched)
    del sched.default_min_lr
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    got, _ = jaxsched.from_torch(sched)
    assert got == want and got.min_lr == 1e-3


def test_sequential_release_field_validation():
    warm = jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=5)
    mult = jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.98)
    with pytest.raises(ValueError, match=r"SequentialLR: release='2\.7' cannot be reproduced: schedulers\[1\] is a "
                                         r"MultiplicativeLR after the milestone 5"):
        jaxsched.SequentialLR([warm, mult], milestones=[5], release="2.7")
    ok = jaxsched.SequentialLR([warm, mult], milestones=[5], release="2.8")
    assert ok(7) == jaxsched.SequentialLR([warm, mult], milestones=[5])(7)  # 2.8 = 2.13 without a milestone at 0
    with pytest.raises(ValueError, match=r"SequentialLR: release must be a torch version such as '2\.12\.1', got "
                                         r"release='latest'\."):
        jaxsched.SequentialLR([warm, mult], milestones=[5], release="latest")
    s = jaxsched.SequentialLR([warm, jaxsched.CosineAnnealingLR(0.1, T_max=100)], milestones=[0], release="2.12.1")
    assert "release='2.12.1'" in repr(s)
    assert jaxsched.from_config(json.dumps(s.to_config())) == s


# ----------------------------------------------------------------------------------------------------------
# python -m parity releases, on a release built here


def test_parity_releases_finds_exactly_the_changed_scheduler(tmp_path):
    """A '9.9.9' whose StepLR decays one step after each multiple of step_size: the table lists exactly the
    StepLR configurations, with their size and first step, and nothing else."""
    source = _installed_source(installed_lr_scheduler)
    line = "(self.last_epoch % self.step_size != 0)"
    assert source.count(line) == 1
    _write_release(tmp_path / "cache", "9.9.9", source.replace(line, "(self.last_epoch % self.step_size != 1)"))
    out = tmp_path / "out"
    rc = parity_main(["releases", "--torch", "9.9.9", "--cache", str(tmp_path / "cache"), "--out", str(out),
                      "--only", "StepLR"])
    assert rc == 0
    table = json.loads((out / "releases.json").read_text())
    rows = {r["config"]: r for r in table["releases"]["9.9.9"]}
    assert set(rows) == {"StepLR (3)", "StepLR (30, gamma=0.5)", "MultiStepLR [30, 80, 80]",
                         "resume StepLR(3), last_epoch=10"}
    differing = {n for n, r in rows.items() if r["vs_jaxsched"]["first"] is not None}
    assert differing == {"StepLR (3)", "StepLR (30, gamma=0.5)", "resume StepLR(3), last_epoch=10"}
    assert rows["StepLR (3)"]["vs_jaxsched"]["first"] == 1
    assert rows["StepLR (3)"]["vs_jaxsched"]["max"] == pytest.approx(0.09, rel=1e-12)  # 0.1 -> 0.01 at step 1
    assert rows["StepLR (30, gamma=0.5)"]["vs_jaxsched"] == {"max": pytest.approx(0.05, rel=1e-12), "first": 1}
    assert rows["MultiStepLR [30, 80, 80]"]["from_torch"] == "exact"
    md = (out / "releases.md").read_text()
    assert "| StepLR (3) | 9.00e-02 @1 |" in md and "MultiStepLR" not in md.split("## torch 9.9.9")[1]


def test_parity_releases_skips_offline(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(releases.urllib.request, "urlopen", offline)
    out = tmp_path / "out"
    assert parity_main(["releases", "--torch", "2.4.1", "--cache", str(tmp_path / "empty"), "--out", str(out)]) == 0
    table = json.loads((out / "releases.json").read_text())
    assert table["releases"] == {}
    assert table["skipped"] == {"2.4.1": "PyPI is not reachable: network is unreachable"}
    assert "Skipped: 2.4.1 (PyPI is not reachable: network is unreachable)." in (out / "releases.md").read_text()


def test_release_of():
    assert _torch_releases.release_of("2.12.1+cpu") == (2, 12)
    assert _torch_releases.release_of(torch.__version__) >= (2, 13)
    with pytest.raises(ValueError, match=r"release_of: version must be a torch version such as '2\.12\.1'"):
        _torch_releases.release_of("nightly")


def test_parity_report_names_the_torch_release_and_the_releases_table(tmp_path):
    from parity import report

    html_path, md_path = report.write([], {}, {}, tmp_path, 0.0)
    version = torch.__version__.split("+")[0]
    for text in (md_path.read_text(), html_path.read_text()):
        assert f"The installed torch, {version}, against jaxsched" in text
        assert "python -m parity releases" in text and "parity/results/releases/releases.md" in text
    assert (Path(__file__).parents[2] / report.RELEASES_TABLE).is_file()


def test_release_field_running_in_float32_follows_the_recursion():
    """Running in float32 takes the closed form only when it is O(1); the legacy stage is a loop."""
    _, jax_build = MILESTONE0["exponential"]
    s = jax_build()
    legacy = jaxsched.SequentialLR(list(s.schedulers), milestones=[0], release="2.12.1")
    assert s._loops is None and legacy._loops is not None
    r = jaxsched.Running(legacy)
    st, got = r.init(), []
    for _ in range(30):
        got.append(float(r(st)))
        st = r.update(st)
    np.testing.assert_allclose(got, _values(legacy, 30), rtol=2e-6)


def test_release_module_imports_nothing_from_the_catalogue():
    """``_torch_releases`` sits below the catalogue (``_compose`` imports it): it imports no jaxsched module."""
    import ast

    tree = ast.parse(Path(_torch_releases.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]
    assert not [m for m in imported if m.startswith("jaxsched")] and not [
        n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0], imported
