"""What changed in ``torch.optim.lr_scheduler`` from torch 2.0 to 2.15, as data, and what ``from_torch`` does.

jaxsched's schedules follow torch 2.13 (2.14 and 2.15 are the same). :data:`CHANGES` lists the releases where a
scheduler's LR sequence changed, measured with each release's own ``lr_scheduler.py``/``swa_utils.py``
(``python -m parity releases``; docs/torch-releases.md). :func:`check` is what ``from_torch`` calls: it refuses,
naming the release and the difference, a torch scheduler whose sequence under the installed release is not
jaxsched's, and :func:`milestone0_release` says when a SequentialLR is to be converted with the behaviour
of an older release (``SequentialLR(..., release="2.12.1")``), the one difference jaxsched offers explicitly.

This module imports nothing from the schedule catalogue: it reads torch objects by their attributes.
"""

from __future__ import annotations

import dataclasses
import re

#: The release whose semantics jaxsched's schedules have (2.14 and 2.15 measured equal).
REFERENCE = (2, 13)
#: The oldest release ``from_torch`` has been checked against.
OLDEST = (2, 0)
#: Classes whose ``get_lr`` tests an ``_is_initial`` flag instead of ``last_epoch == 0`` from 2.8 (LinearLR
#: tests both: ``last_epoch == 0`` first, so its step at ``last_epoch = 0`` stays its initial one).
INITIAL_FLAG_CLASSES = ("MultiplicativeLR", "ExponentialLR", "CosineAnnealingLR", "PolynomialLR")
DOCS = "the torch releases page of the docs (docs/torch-releases.md)"


@dataclasses.dataclass(frozen=True)
class Change:
    """One change of torch's LR sequence. ``since``: the first release that does what jaxsched does (torch
    2.13's semantics); ``what``: what the releases before it do; ``measured``: its size on an example, from
    ``python -m parity releases`` (300 steps, float64, base LR 0.1)."""

    key: str
    scheduler: str
    since: tuple[int, int]
    what: str
    measured: str


CHANGES = (
    Change("milestone0", "SequentialLR", (2, 13),
           "with a milestone at 0, releases up to 2.12 keep the first scheduler's initial factor in the LR and "
           "run the next scheduler's recursion from it, one step late, for the whole stage (2.13 gives the "
           "initial step to the scheduler active at step 0)",
           "LinearLR(start_factor=0.1, total_iters=5) then CosineAnnealingLR(T_max=100), milestones=[0]: the "
           "run trains at a tenth of the LR, max difference 9.0e-2 at LR 0.1"),
    Change("multiplicative_member", "SequentialLR", (2, 8),
           "a MultiplicativeLR member after a milestone holds the previous LR one extra step in releases up to "
           "2.7 (its get_lr tested last_epoch > 0), so every later LR is 1/lambda times 2.8's",
           "LinearLR(0.1, 5) then MultiplicativeLR(0.98), milestones=[5]: 1.64e-3 from step 5"),
    Change("swalr_member", "SequentialLR", (2, 9),
           "an SWALR member after a milestone starts annealing one step earlier in releases up to 2.8 "
           "(SequentialLR called step(0), which counted a step; 2.9 calls _update_lr(0))",
           "CosineAnnealingLR(100) then SWALR(0.05, 10), milestones=[50]: 2.43e-4 from step 50"),
    Change("cawr_resume", "CosineAnnealingWarmRestarts", (2, 8),
           "constructed with last_epoch >= T_i (a resume), releases up to 2.7 subtract T_i once "
           "(T_cur - T_i) where 2.8 takes T_cur % T_i, so the LR right after construction differs (later "
           "steps agree)",
           "T_0=10, last_epoch=25: 3.09e-2 at the first LR only"),
    Change("resume", "ExponentialLR/CosineAnnealingLR/LinearLR/PolynomialLR/MultiplicativeLR", (2, 8),
           "constructed with last_epoch=k >= 0 (a resume without load_state_dict), releases up to 2.7 apply "
           "step k -> k+1 during construction; 2.8 keeps the LR the optimizer holds, so its recursion runs one "
           "step late (from_torch reproduces 2.8+ with running=True and converts the <=2.7 objects as they are)",
           "ExponentialLR(0.9) resumed at 10: 3.49e-3; LinearLR(0.1, 20) at 5: 1.22e-2 (2.8+ never reaches "
           "end_factor)"),
)


class TorchReleaseError(ValueError):
    """``from_torch``: the installed torch release computes another LR sequence than jaxsched for this scheduler."""


def release_of(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a torch version string (``"2.12.1+cpu"`` -> ``(2, 12)``)."""
    m = re.match(r"\s*(\d+)\.(\d+)", str(version))
    if m is None:
        raise ValueError(f"release_of: version must be a torch version such as '2.12.1', got version={version!r}.")
    return int(m.group(1)), int(m.group(2))


def installed() -> str:
    """The installed ``torch.__version__`` (read when ``from_torch`` runs, so a test can patch it)."""
    import torch

    return str(torch.__version__)


def change(key: str) -> Change:
    return next(c for c in CHANGES if c.key == key)


def _refuse(key: str, version: str, detail: str) -> TorchReleaseError:
    c = change(key)
    return TorchReleaseError(
        f"from_torch: {detail}, and torch {version} computes another LR sequence than jaxsched (torch 2.13's "
        f"semantics): {c.what}; changed in torch {c.since[0]}.{c.since[1]}. Measured: {c.measured}. See "
        f"{DOCS}. Run the recipe on torch >= {c.since[0]}.{c.since[1]}, or write its schedule with jaxsched."
    )


#: The torch classes whose behaviour changed, named as torch names them (a subclass counts as its base).
_KINDS = ("SequentialLR", "CosineAnnealingWarmRestarts", "SWALR", *INITIAL_FLAG_CLASSES, "LinearLR")


def _class(obj) -> str:
    """``obj``'s torch class name, or that of the first changed torch class it subclasses."""
    return next((c.__name__ for c in type(obj).__mro__ if c.__name__ in _KINDS), type(obj).__name__)


def _members(obj) -> list:
    return list(getattr(obj, "_schedulers", None) or [])


def _first_active(milestones) -> int:
    """The index of the SequentialLR member active at step 0: the number of milestones at 0."""
    return sum(1 for m in milestones if m == 0)


def legacy_milestone0(release: str) -> bool:
    """Whether torch ``release``'s SequentialLR keeps the first scheduler's initial step at a milestone of 0."""
    return release_of(release) < REFERENCE


def step0_is_initial(member: str, release: str) -> bool:
    """In torch ``release``'s SequentialLR with a milestone at 0, whether the member's first step (at
    ``last_epoch = 0``) is its initial step (``get_lr`` tests ``last_epoch == 0``) rather than a recursive one
    (from 2.8, :data:`INITIAL_FLAG_CLASSES` test the ``_is_initial`` flag, which that step does not set)."""
    return release_of(release) < (2, 8) or member not in INITIAL_FLAG_CLASSES


def sequential_release_problem(members: list[str], milestones, release: str) -> tuple[str, str] | None:
    """Why torch ``release``'s SequentialLR over ``members`` (class names) and ``milestones`` differs from
    jaxsched's ``SequentialLR(..., release=release)``, as ``(CHANGES key, reason)``, or None when it is
    reproduced."""
    rel = release_of(release)
    if rel >= REFERENCE:
        return None
    milestones = list(milestones)
    first = _first_active(milestones)
    for i, member in enumerate(members[1:], start=1):
        m = milestones[i - 1]
        if i == first and m == 0 and member in ("SWALR", "CosineAnnealingWarmRestarts"):
            return "milestone0", (f"milestones={milestones} start schedulers[{i}], a {member}, at 0, which "
                                  f"jaxsched does not reproduce for torch <= 2.12 (its step depends on its own "
                                  f"step counter)")
        if m == 0:
            continue
        if member == "MultiplicativeLR" and rel < (2, 8):
            return "multiplicative_member", f"schedulers[{i}] is a MultiplicativeLR after the milestone {m}"
        if member == "SWALR" and rel < (2, 9):
            return "swalr_member", f"schedulers[{i}] is an SWALR after the milestone {m}"
    return None


def milestone0_release(obj, version: str | None = None) -> str | None:
    """For a torch SequentialLR with a milestone at 0 under torch <= 2.12: the release (``release=`` of
    jaxsched's SequentialLR, which reproduces it); otherwise None."""
    version = installed() if version is None else version
    milestones = list(getattr(obj, "_milestones", None) or [])
    if release_of(version) >= REFERENCE or not milestones or milestones[0] != 0:
        return None
    return version.split("+")[0]


def anneal_strategy(sched) -> str:
    """OneCycleLR's ``anneal_strategy``: ``_anneal_func_type`` from 2.4; a bound ``anneal_func`` up to 2.3."""
    kind = getattr(sched, "_anneal_func_type", None)
    if kind is None:
        kind = {"_annealing_cos": "cos", "_annealing_linear": "linear"}.get(sched.anneal_func.__name__)
    if kind is None:
        raise TypeError(f"from_torch: OneCycleLR's anneal_func must be torch's cos or linear annealing, got "
                        f"anneal_func={sched.anneal_func!r}.")
    return kind


def check(sched, version: str | None = None) -> str | None:
    """Raise :class:`TorchReleaseError` when torch ``version`` (default: the installed one) gives ``sched``
    another LR sequence than jaxsched's conversion would, naming the release and the difference. Returns the
    release for a SequentialLR with a milestone at 0 under torch <= 2.12 (convert it with ``release=`` that
    release), else None."""
    version = installed() if version is None else version
    rel = release_of(version)
    if rel < OLDEST:
        raise TorchReleaseError(
            f"from_torch: torch {version} is older than 2.0, the oldest release from_torch is checked against "
            f"(torch.__version__={version!r}); see {DOCS}.")
    if rel >= REFERENCE:
        return None
    name = _class(sched)
    if name == "CosineAnnealingWarmRestarts" and rel < (2, 8) and sched.T_cur >= sched.T_i:
        raise _refuse("cawr_resume", version, f"this CosineAnnealingWarmRestarts holds T_cur={sched.T_cur} >= "
                      f"T_i={sched.T_i} (constructed with last_epoch >= T_0)")
    if name != "SequentialLR":
        return None
    milestones = list(sched._milestones)
    members = [_class(s) for s in _members(sched)]
    problem = sequential_release_problem(members, milestones, version)
    if problem is None:
        return milestone0_release(sched, version)
    key, reason = problem
    raise _refuse(key, version, f"this SequentialLR's {reason}")
