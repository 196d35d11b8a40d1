"""``python -m parity releases``: jaxsched against the schedulers of older and newer torch releases.

A torch release's schedulers are two Python files, ``torch/optim/lr_scheduler.py`` and
``torch/optim/swa_utils.py``. For each release this reads just those two files out of the release's wheel on
PyPI (HTTP range requests into the zip, so a 55-140 MB wheel costs a few MB; a full download when the server
does not serve ranges), caches them in ``~/.cache/jaxsched/torch-releases/<version>/`` (``$JAXSCHED_CACHE``
moves the cache), loads them as modules on the installed torch (relative imports resolve to the installed
``torch.optim``; swa_utils imports the release's own lr_scheduler), runs every configuration of
:data:`CONFIGS` for 300 steps in float64 and compares the LRs (and cycled momenta) with jaxsched's.

It writes ``releases.md`` and ``releases.json`` into ``--out``: per release, every configuration whose
sequence differs from jaxsched's, with the largest difference and the first step that differs. Offline (or
PyPI unreachable), a release that is not cached is skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import math
import os
import platform
import re
import sys
import types
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: The releases where the schedulers' behaviour changed (see docs/torch-releases.md), and the newest.
DEFAULT_RELEASES = ("2.0.1", "2.2.2", "2.3.1", "2.7.1", "2.8.0", "2.12.1", "2.15.0")
FILES = ("torch/optim/lr_scheduler.py", "torch/optim/swa_utils.py")
STEPS = 300
BASE_LR = 0.1
#: A difference at or below this (absolute, LR 0.1) is float rounding: torch's recursion against a closed form.
EXACT = 1e-12


class Unavailable(Exception):
    """A release's files are neither cached nor downloadable (offline, PyPI unreachable, no wheel)."""


def cache_root() -> Path:
    root = os.environ.get("JAXSCHED_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "jaxsched") / "torch-releases"


# ----------------------------------------------------------------------------------------------------------
# fetching the two files


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP range requests (what ``zipfile`` needs)."""

    def __init__(self, url: str, size: int, timeout: float = 60.0):
        super().__init__()
        self.url, self.size, self.pos, self.timeout = url, size, 0, timeout
        self.fetched = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            if resp.status != 206:
                raise OSError(f"the server does not serve byte ranges (HTTP {resp.status})")
            data = resp.read()
        self.pos += len(data)
        self.fetched += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def wheel_of(version: str, index: str = "https://pypi.org/pypi") -> dict:
    """PyPI's record of the smallest torch wheel of ``version`` (the macOS arm64 ones carry the same sources)."""
    try:
        with urllib.request.urlopen(f"{index}/torch/json", timeout=60) as resp:
            releases = json.load(resp)["releases"]
    except urllib.error.HTTPError as err:
        raise Unavailable(f"PyPI answered HTTP {err.code} for torch's release list") from None
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise Unavailable(f"PyPI is not reachable: {getattr(err, 'reason', err)}") from None
    if version not in releases:
        raise Unavailable(f"PyPI has no torch {version}")
    wheels = [f for f in releases[version] if f["filename"].endswith(".whl")]
    if not wheels:
        raise Unavailable(f"PyPI lists no wheel for torch {version}")
    wheel = dict(min(wheels, key=lambda f: f["size"]))
    wheel["url"] = urllib.parse.urljoin(f"{index}/torch/json", wheel["url"])  # a mirror may give relative URLs
    return wheel


def fetch(version: str, cache: Path | None = None) -> Path:
    """The folder holding ``version``'s ``lr_scheduler.py`` and ``swa_utils.py``, fetched once and cached
    (``cache`` is the folder holding one folder per version)."""
    folder = (cache or cache_root()) / version
    names = [Path(f).name for f in FILES]
    if all((folder / n).is_file() for n in names):
        return folder
    wheel = wheel_of(version)
    try:
        raw = _RangeFile(wheel["url"], wheel["size"])
        with zipfile.ZipFile(io.BufferedReader(raw, buffer_size=1 << 16)) as zf:  # type: ignore[arg-type]
            contents = {n: zf.read(f) for n, f in zip(names, FILES)}
    except OSError:  # no range requests: the whole wheel, into memory, then dropped
        try:
            with urllib.request.urlopen(wheel["url"], timeout=600) as resp:
                blob = resp.read()
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise Unavailable(f"cannot download {wheel['filename']}: {getattr(err, 'reason', err)}") from None
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            contents = {n: zf.read(f) for n, f in zip(names, FILES)}
    folder.mkdir(parents=True, exist_ok=True)
    for n, data in contents.items():
        (folder / n).write_bytes(data)
    (folder / "SOURCE").write_text(f"{wheel['filename']}\n{wheel['url']}\nsha256 {wheel['digests']['sha256']}\n")
    return folder


# ----------------------------------------------------------------------------------------------------------
# loading a release's files on the installed torch


@dataclasses.dataclass
class Release:
    """One release's scheduler modules, loaded on the installed torch."""

    version: str
    lr_scheduler: types.ModuleType
    swa_utils: types.ModuleType


def _module_name(version: str, stem: str) -> str:
    return f"_jaxsched_torch_{version.replace('.', '_').replace('+', '_')}_{stem}"


def load(version: str, folder: Path) -> Release:
    """Execute ``folder``'s two files as modules; ``from .x`` imports resolve to the installed ``torch.optim``."""
    import torch.optim  # noqa: F401  (the package the relative imports resolve in)

    mods = {}
    for stem in ("lr_scheduler", "swa_utils"):
        name = _module_name(version, stem)
        source = (folder / f"{stem}.py").read_text()
        if stem == "swa_utils":  # SWALR must extend this release's LRScheduler, not the installed one
            own = mods["lr_scheduler"].__name__
            source = re.sub(r"^from (?:\.|torch\.optim\.)lr_scheduler import", f"from {own} import", source,
                            flags=re.M)
        module = types.ModuleType(name)
        module.__file__ = str(folder / f"{stem}.py")
        module.__package__ = "torch.optim"
        sys.modules[name] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102  (the release's own code)
        mods[stem] = module
    return Release(version, mods["lr_scheduler"], mods["swa_utils"])


# ----------------------------------------------------------------------------------------------------------
# the configurations


@dataclasses.dataclass(frozen=True)
class Config:
    """One torch scheduler recipe: ``build(lr_scheduler, swa_utils, optimizer)`` constructs it."""

    name: str
    build: Callable[[Any, Any, Any], Any]
    optimizer: str = "sgd"
    momentum: bool = False  # compare the cycled momentum (SGD) or beta1 (Adam) too
    running: bool = False  # a resume via last_epoch: jaxsched continues with from_torch(..., running=True)
    metric: bool = False  # ReduceLROnPlateau: step(metric)


def _resume(opt, lr_now: float):
    """The optimizer of a resumed run: ``initial_lr`` the base LR, holding ``lr_now``, the LR of the step resumed at."""
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
        g["lr"] = lr_now
    return opt


def _metric(k: int) -> float:
    """The metric ReduceLROnPlateau sees at step ``k``: improving, then a plateau with small wiggles."""
    return 1.0 / (1 + k) if k < 40 else 0.025 + 0.001 * ((7 * k) % 5)


def _lin(L, opt, **kw):
    return L.LinearLR(opt, **kw)


CONFIGS: tuple[Config, ...] = (
    Config("LambdaLR 0.95**e", lambda L, S, o: L.LambdaLR(o, lambda e: 0.95 ** e)),
    Config("MultiplicativeLR 0.97", lambda L, S, o: L.MultiplicativeLR(o, lambda e: 0.97)),
    Config("StepLR (3)", lambda L, S, o: L.StepLR(o, 3)),
    Config("StepLR (30, gamma=0.5)", lambda L, S, o: L.StepLR(o, 30, gamma=0.5)),
    Config("MultiStepLR [30, 80, 80]", lambda L, S, o: L.MultiStepLR(o, [30, 80, 80])),
    Config("ConstantLR (0.5, 10)", lambda L, S, o: L.ConstantLR(o, factor=0.5, total_iters=10)),
    Config("LinearLR 0.01 -> 1 over 20", lambda L, S, o: _lin(L, o, start_factor=0.01, total_iters=20)),
    Config("ExponentialLR 0.99", lambda L, S, o: L.ExponentialLR(o, 0.99)),
    Config("PolynomialLR (100, power=2)", lambda L, S, o: L.PolynomialLR(o, total_iters=100, power=2.0)),
    Config("CosineAnnealingLR 100", lambda L, S, o: L.CosineAnnealingLR(o, T_max=100)),
    Config("CosineAnnealingLR 50, eta_min=0.01", lambda L, S, o: L.CosineAnnealingLR(o, T_max=50, eta_min=0.01)),
    Config("SequentialLR Linear(5) + Cos(95), [5]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=95)], [5])),
    Config("SequentialLR Const, Step, Cos, [10, 100]", lambda L, S, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.5, total_iters=10), L.StepLR(o, 30), L.CosineAnnealingLR(o, T_max=150)],
        [10, 100])),
    Config("SequentialLR Const(0.5, 10) + Exp(0.99), [0]", lambda L, S, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.5, total_iters=10), L.ExponentialLR(o, 0.99)], [0])),
    Config("SequentialLR Linear(0.1, 5) + Cos(100), [0]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=100)], [0])),
    Config("SequentialLR Linear(0.1, 5) + Step(30), [0]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.StepLR(o, 30)], [0])),
    Config("SequentialLR Linear(0.1, 5) + Linear(1 -> 0.1, 100), [0]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), _lin(L, o, start_factor=1.0, end_factor=0.1,
                                                               total_iters=100)], [0])),
    Config("SequentialLR Linear(0.1, 5) + Poly(100, 2) + Exp(0.9), [0, 120]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.PolynomialLR(o, total_iters=100, power=2.0),
            L.ExponentialLR(o, 0.9)], [0, 120])),
    Config("SequentialLR Linear(0.1, 5) + Multiplicative(0.98), [0]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.MultiplicativeLR(o, lambda e: 0.98)], [0])),
    Config("SequentialLR Exp(0.9) + Const(0.5, 10), [0]", lambda L, S, o: L.SequentialLR(
        o, [L.ExponentialLR(o, 0.9), L.ConstantLR(o, factor=0.5, total_iters=10)], [0])),
    Config("SequentialLR Linear(0.1, 5) + Lambda(0.95**e), [0]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.LambdaLR(o, lambda e: 0.95 ** e)], [0])),
    Config("SequentialLR Const(0.5, 3) + MultiStep([0, 30, 60]), [0]", lambda L, S, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.5, total_iters=3), L.MultiStepLR(o, [0, 30, 60])], [0])),
    Config("SequentialLR Linear(0.1, 5) + Multiplicative(0.98), [5]", lambda L, S, o: L.SequentialLR(
        o, [_lin(L, o, start_factor=0.1, total_iters=5), L.MultiplicativeLR(o, lambda e: 0.98)], [5])),
    Config("SequentialLR Cos(100) + SWALR(0.05, 10), [50]", lambda L, S, o: L.SequentialLR(
        o, [L.CosineAnnealingLR(o, T_max=100), S.SWALR(o, swa_lr=0.05, anneal_epochs=10)], [50])),
    Config("ChainedScheduler Const + Exp", lambda L, S, o: L.ChainedScheduler(
        [L.ConstantLR(o, factor=0.5, total_iters=10), L.ExponentialLR(o, 0.99)])),
    Config("ChainedScheduler Linear + Cos", lambda L, S, o: L.ChainedScheduler(
        [_lin(L, o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=100)])),
    Config("ReduceLROnPlateau (patience 5, cooldown 2, factor 0.5, min_lr 1e-4)",
           lambda L, S, o: L.ReduceLROnPlateau(o, patience=5, cooldown=2, factor=0.5, min_lr=1e-4), metric=True),
    Config("CyclicLR triangular", lambda L, S, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=10), momentum=True),
    Config("CyclicLR exp_range 0.99", lambda L, S, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=10, mode="exp_range",
                                                                   gamma=0.99), momentum=True),
    Config("CyclicLR on Adam (beta1 cycled)", lambda L, S, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=10),
           optimizer="adam", momentum=True),
    Config("CosineAnnealingWarmRestarts T_0=10", lambda L, S, o: L.CosineAnnealingWarmRestarts(o, T_0=10)),
    Config("CosineAnnealingWarmRestarts T_0=10, T_mult=2, eta_min=1e-3",
           lambda L, S, o: L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3)),
    Config("OneCycleLR 300 steps", lambda L, S, o: L.OneCycleLR(o, max_lr=0.1, total_steps=300), momentum=True),
    Config("OneCycleLR 10 x 30, linear, three-phase", lambda L, S, o: L.OneCycleLR(
        o, max_lr=0.1, epochs=10, steps_per_epoch=30, anneal_strategy="linear", three_phase=True), momentum=True),
    Config("SWALR (0.05, 10, cos)", lambda L, S, o: S.SWALR(o, swa_lr=0.05, anneal_epochs=10)),
    Config("resume CosineAnnealingWarmRestarts T_0=10, last_epoch=25", lambda L, S, o: L.CosineAnnealingWarmRestarts(
        _resume(o, 0.05 * (1 + math.cos(math.pi * 5 / 10))), T_0=10, last_epoch=25)),
    Config("resume ExponentialLR(0.9), last_epoch=10", lambda L, S, o: L.ExponentialLR(
        _resume(o, 0.1 * 0.9 ** 10), 0.9, last_epoch=10), running=True),
    Config("resume CosineAnnealingLR(100), last_epoch=30", lambda L, S, o: L.CosineAnnealingLR(
        _resume(o, 0.05 * (1 + math.cos(math.pi * 30 / 100))), T_max=100, last_epoch=30), running=True),
    Config("resume LinearLR(0.1, 20), last_epoch=5", lambda L, S, o: _lin(
        L, _resume(o, 0.1 * (0.1 + 0.9 * 5 / 20)), start_factor=0.1, total_iters=20, last_epoch=5), running=True),
    Config("resume PolynomialLR(100, 2), last_epoch=20", lambda L, S, o: L.PolynomialLR(
        _resume(o, 0.1 * 0.8 ** 2), total_iters=100, power=2.0, last_epoch=20), running=True),
    Config("resume MultiplicativeLR(0.97), last_epoch=10", lambda L, S, o: L.MultiplicativeLR(
        _resume(o, 0.1 * 0.97 ** 10), lambda e: 0.97, last_epoch=10), running=True),
    Config("resume StepLR(3), last_epoch=10", lambda L, S, o: L.StepLR(
        _resume(o, 0.1 * 0.1 ** 3), 3, last_epoch=10), running=True),
)


# ----------------------------------------------------------------------------------------------------------
# running them


def _optimizer(kind: str):
    import torch

    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    return torch.optim.SGD([p], lr=BASE_LR, momentum=0.9) if kind == "sgd" else torch.optim.Adam([p], lr=BASE_LR)


def _record(opt, momentum: bool) -> tuple[float, float]:
    g = opt.param_groups[0]
    if not momentum:
        return float(g["lr"]), 0.0
    return float(g["lr"]), float(g["betas"][0] if "betas" in g else g["momentum"])


def torch_run(cfg: Config, L, S, steps: int = STEPS, upto: int | None = None):
    """``(sched, lrs, momenta)`` after ``upto`` (default ``steps``) steps of ``cfg`` built with modules L, S."""
    opt = _optimizer(cfg.optimizer)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = cfg.build(L, S, opt)
        out.append(_record(opt, cfg.momentum))
        for k in range(steps if upto is None else upto):
            opt.step()
            sched.step(_metric(k)) if cfg.metric else sched.step()
            out.append(_record(opt, cfg.momentum))
    a = np.asarray(out, np.float64)
    return sched, a[:, 0], a[:, 1]


def jaxsched_run(sched, cfg: Config, steps: int, start: int = 0):
    """``from_torch(sched)`` (``running=cfg.running``) run for ``steps`` steps: ``(lrs, momenta)``."""
    import jax
    import jax.numpy as jnp

    import jaxsched

    with jax.enable_x64(True):
        out = jaxsched.from_torch(sched, running=cfg.running)
        mom = np.zeros(steps + 1)
        if isinstance(out, tuple):
            r, st = out
            lrs = [float(np.ravel(r(st))[0])]
            update = jax.jit(r.update) if not cfg.metric else None
            for k in range(steps):
                st = r.update(st, value=_metric(start + k)) if cfg.metric else update(st)
                lrs.append(float(np.ravel(r(st))[0]))
            return np.asarray(lrs), mom
        ks = jnp.arange(steps + 1)
        lrs = np.asarray(out(ks), np.float64).reshape(steps + 1, -1)[:, 0]
        if cfg.momentum:
            mom = np.asarray(out.momentum(ks), np.float64).reshape(steps + 1, -1)[:, 0]
        return lrs, mom


def difference(a_lr, a_mom, b_lr, b_mom) -> dict:
    """Largest absolute LR (or momentum) difference and the first step where it exceeds :data:`EXACT`."""
    d = np.maximum(np.abs(a_lr - b_lr), np.abs(a_mom - b_mom))
    bad = np.nonzero(~(d <= EXACT))[0]
    return {"max": float(np.nanmax(d)) if np.isfinite(d).all() else float("nan"),
            "first": int(bad[0]) if bad.size else None}


class as_installed:
    """Context: ``release``'s modules stand in for ``torch.optim.lr_scheduler``/``swa_utils`` and
    ``torch.__version__`` is its version, so that ``from_torch`` sees what it would under that release."""

    def __init__(self, release: Release):
        self.release = release

    def __enter__(self):
        import torch
        import torch.optim.lr_scheduler
        import torch.optim.swa_utils

        self.saved = (sys.modules["torch.optim.lr_scheduler"], sys.modules["torch.optim.swa_utils"],
                      torch.__version__)
        sys.modules["torch.optim.lr_scheduler"] = self.release.lr_scheduler
        sys.modules["torch.optim.swa_utils"] = self.release.swa_utils
        torch.__version__ = self.release.version  # type: ignore[assignment]
        return self

    def __exit__(self, *exc):
        import torch

        sys.modules["torch.optim.lr_scheduler"], sys.modules["torch.optim.swa_utils"], version = self.saved
        torch.__version__ = version  # type: ignore[assignment]
        return False


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


#: ``from_torch`` is called on the release's scheduler after 0 steps (compared for every step) and after 7
#: (compared for 50 more).
CONVERT = ((0, STEPS), (7, 50))


def compare_release(release: Release, configs=CONFIGS, steps: int = STEPS, installed_runs: dict | None = None):
    """One row per configuration: the release against jaxsched (and the installed torch), and ``from_torch``
    on the release's own object."""
    import torch.optim.lr_scheduler as L0
    import torch.optim.swa_utils as S0

    rows = []
    for cfg in configs:
        row: dict[str, Any] = {"config": cfg.name}
        try:
            _, r_lr, r_mom = torch_run(cfg, release.lr_scheduler, release.swa_utils, steps)
        except Exception as err:  # noqa: BLE001  (a release that refuses the recipe: reported as such)
            row["release_error"] = _error(err)
            rows.append(row)
            continue
        if installed_runs is None or cfg.name not in installed_runs:
            sched0, i_lr, i_mom = torch_run(cfg, L0, S0, steps)
            j_lr, j_mom = jaxsched_run(torch_run(cfg, L0, S0, steps, upto=0)[0], cfg, steps)
            if installed_runs is not None:
                installed_runs[cfg.name] = (i_lr, i_mom, j_lr, j_mom)
        else:
            i_lr, i_mom, j_lr, j_mom = installed_runs[cfg.name]
        row["vs_jaxsched"] = difference(r_lr, r_mom, j_lr, j_mom)
        row["vs_installed_torch"] = difference(r_lr, r_mom, i_lr, i_mom)
        try:
            worst = {"max": 0.0, "first": None}
            for at, n in CONVERT:
                n = min(n, steps - at)
                with as_installed(release):
                    sched, _, _ = torch_run(cfg, release.lr_scheduler, release.swa_utils, steps, upto=at)
                    f_lr, f_mom = jaxsched_run(sched, cfg, n, start=at)
                d = difference(r_lr[at:at + n + 1], r_mom[at:at + n + 1], f_lr, f_mom)
                if d["first"] is not None and (worst["first"] is None or d["max"] > worst["max"]):
                    worst = {"max": d["max"], "first": d["first"] + at}
            row["from_torch"] = ("exact" if worst["first"] is None
                                 else f"differs: {worst['max']:.2e} @{worst['first']}")
        except Exception as err:  # noqa: BLE001
            from jaxsched._torch_releases import TorchReleaseError

            if isinstance(err, TorchReleaseError):
                since = re.search(r"changed in torch (\d+\.\d+)", str(err))
                row["from_torch"] = f"refused (TorchReleaseError: changed in torch {since.group(1) if since else '?'})"
                row["from_torch_message"] = str(err)
            else:
                row["from_torch"] = "error: " + _error(err)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------------
# the table


def _cell(row: dict) -> str:
    if "release_error" in row:
        return row["release_error"].split(":")[0]
    d = row["vs_jaxsched"]
    return "0" if d["first"] is None else f"{d['max']:.2e} @{d['first']}"


def differs(row: dict) -> bool:
    return "release_error" in row or row["vs_jaxsched"]["first"] is not None or row.get("from_torch") != "exact"


def environment() -> str:
    import jax
    import torch

    return (f"{datetime.date.today().isoformat()}, {platform.machine()} CPU with {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, installed torch {torch.__version__}, jax {jax.__version__}")


def write(results: dict, skipped: dict, out: Path, seconds: float) -> tuple[Path, Path]:
    """``releases.md`` and ``releases.json`` in ``out``: every differing configuration per release."""
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    payload = {"environment": env, "steps": STEPS, "base_lr": BASE_LR, "exact_below": EXACT,
               "configs": [c.name for c in CONFIGS if any(r["config"] == c.name for rs in results.values()
                                                         for r in rs)],
               "releases": results, "skipped": skipped}
    (out / "releases.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# jaxsched against torch's releases",
        "",
        f"Generated by `python -m parity releases` ({env}; {seconds:.0f} s). Each release's own",
        "`torch/optim/lr_scheduler.py` and `swa_utils.py`, read from its wheel on PyPI, ran on the installed torch's",
        f"optimizer for {STEPS} steps in float64 (SGD with momentum 0.9, or Adam; base LR {BASE_LR}). jaxsched's",
        "sequence is `from_torch` of the installed torch's scheduler, which is torch 2.13's semantics.",
        "",
        "- **vs jaxsched**: the largest absolute LR (or cycled momentum) difference, and `@` the first step where",
        f"  it exceeds {EXACT:g}; `0` means within that everywhere. An exception name means the release refuses",
        "  the recipe.",
        "- **from_torch under the release**: `from_torch` called on the release's own object (the release's",
        "  modules standing in for `torch.optim.lr_scheduler`, `torch.__version__` patched) after 0 steps (compared",
        "  for every step) and after 7 (compared for 50 more): `exact`, or `refused` with the named",
        "  `TorchReleaseError`, or how far it is off.",
        "",
    ]
    versions = list(results)
    if skipped:
        lines += ["Skipped: " + "; ".join(f"{v} ({why})" for v, why in skipped.items()) + ".", ""]
    if versions:
        names = payload["configs"]
        by = {v: {r["config"]: r for r in results[v]} for v in versions}
        diff_names = [n for n in names if any(n in by[v] and differs(by[v][n]) for v in versions)]
        same = len(names) - len(diff_names)
        lines += ["## Summary: vs jaxsched, per release", "",
                  f"{same} of {len(names)} configurations are identical to jaxsched in every release run "
                  f"({', '.join(versions)}). The others:", "",
                  "| configuration | " + " | ".join(versions) + " |", "|---|" + "---|" * len(versions)]
        for n in diff_names:
            lines.append(f"| {n} | " + " | ".join(_cell(by[v][n]) if n in by[v] else "—" for v in versions) + " |")
        lines.append("")
        for v in versions:
            rows = [r for r in results[v] if differs(r)]
            lines += [f"## torch {v}", ""]
            if not rows:
                lines += [f"All {len(results[v])} configurations equal jaxsched's, and `from_torch` on each is exact.",
                          ""]
                continue
            lines += [f"{len(results[v]) - len(rows)} of {len(results[v])} configurations equal jaxsched's, with "
                      "`from_torch` exact. The others:", "",
                      "| configuration | vs jaxsched | vs installed torch | from_torch under the release |",
                      "|---|---|---|---|"]
            for r in rows:
                if "release_error" in r:
                    lines.append(f"| {r['config']} | {r['release_error']} | — | — |")
                    continue
                t = r["vs_installed_torch"]
                t_cell = "0" if t["first"] is None else f"{t['max']:.2e} @{t['first']}"
                lines.append(f"| {r['config']} | {_cell(r)} | {t_cell} | {r['from_torch']} |")
            lines.append("")
    md = out / "releases.md"
    md.write_text("\n".join(lines))
    return md, out / "releases.json"


def run(versions, out: Path, cache: Path | None = None, only: str | None = None) -> int:
    """Fetch, compare and write the tables; returns the exit status (0; 2 when ``only`` matches nothing)."""
    import time

    versions = list(versions or DEFAULT_RELEASES)
    configs = tuple(c for c in CONFIGS if not only or only.lower() in c.name.lower())
    if not configs:
        print(f"no configuration name contains {only!r}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    results, skipped, installed_runs = {}, {}, {}
    for v in versions:
        try:
            folder = fetch(v, cache)
        except Unavailable as err:
            print(f"torch {v}: skipped: {err}", flush=True)
            skipped[v] = str(err)
            continue
        rows = compare_release(load(v, folder), configs, installed_runs=installed_runs)
        results[v] = rows
        n = sum(differs(r) for r in rows)
        print(f"torch {v}: {len(rows) - n} of {len(rows)} configurations equal jaxsched's; {n} differ", flush=True)
    md, js = write(results, skipped, out, time.perf_counter() - t0)
    print(f"wrote {md} and {js}")
    return 0
