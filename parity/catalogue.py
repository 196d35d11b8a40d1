"""The parity catalogue: every torch scheduler, the common recipes, and the edge cases of torch's semantics.

Each case names a jaxsched schedule, how many ``scheduler.step()`` calls to compare, the torch optimizer
whose momentum (or Adam ``betas[0]``) is read back, and, where optax can express the case, the
construction an expert would write from optax's built-ins (``OptaxExpert``). ``exact=False`` marks an
optax construction that is only the nearest approximation (the case is not expressible in optax).

Edge cases follow ../shared/reference/torch-lr-scheduler-semantics.md; optax constructions follow
../shared/reference/optax-and-peers.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import optax

import jaxsched


@dataclasses.dataclass(frozen=True)
class OptaxExpert:
    """An optax construction for a case: ``lr`` (and ``momentum``) map an int32 count to the value used."""

    lr: Callable[[], Callable]
    text: str
    momentum: Callable[[], Callable] | None = None
    exact: bool = True
    # Compare only counts < steps (OneCycleLR: index total_steps is never used by an update).
    steps: int | None = None


@dataclasses.dataclass(frozen=True)
class Case:
    """A schedule compared with torch over indices ``0..steps`` (``steps`` calls of ``scheduler.step()``)."""

    name: str
    kind: str  # "scheduler", "recipe" or "edge"
    build: Callable[[], jaxsched.Schedule]
    steps: int
    note: str
    optimizer: str = "sgd"
    optax: OptaxExpert | None = None
    # The construction as text, where repr() cannot show it (lambdas).
    shown: str = ""
    # A known jaxsched failure: reported as "FAIL (known issue)", not counted by `parity check`'s exit code.
    known_issue: str = ""


@dataclasses.dataclass(frozen=True)
class PlateauCase:
    """ReduceLROnPlateau fed a fixed recorded loss curve, one value per ``scheduler.step(loss)``."""

    name: str
    kind: str
    lr: float
    kwargs: dict
    losses: tuple
    note: str
    optax: OptaxExpert | None = None
    known_issue: str = ""

    @property
    def steps(self) -> int:
        return len(self.losses)


def recorded_loss_curve(epochs: int = 120, seed: int = 0) -> tuple:
    """A validation-loss curve that plateaus: exponential decay, a slow drift and seeded noise, 6 decimals."""
    rng = np.random.default_rng(seed)
    k = np.arange(epochs)
    loss = 0.35 + 1.6 * np.exp(-k / 12.0) + 0.002 * np.sin(0.9 * k) + 0.01 * rng.standard_normal(epochs)
    loss[60:75] += np.linspace(0.0, 0.05, 15)  # a bump: the plateau must wait it out
    return tuple(float(round(x, 6)) for x in loss)


# ----------------------------------------------------------------------------------------------------------
# optax helpers (the expert constructions)


def _product(*schedules):
    return lambda k: math.prod(s(k) for s in schedules)


def _stack(*schedules):
    return lambda k: jnp.stack([s(k) for s in schedules])


def _cyclic_segments(base, peak, up, down, cycles, heights):
    """CyclicLR as ``join_schedules`` of linear up/down segments, one pair per cycle (horizon unrolled)."""
    scheds, bounds, t = [], [], 0
    for c in range(cycles):
        top = base + (peak - base) * heights[c]
        scheds += [optax.linear_schedule(base, top, up), optax.linear_schedule(top, base, down)]
        bounds += [t + up, t + up + down]
        t += up + down
    return optax.join_schedules(scheds, bounds[:-1])


def _cyclic_momentum(lo, hi, up, down, cycles, heights):
    return _cyclic_segments(hi, lo, up, down, cycles, heights)


def _onecycle(init, peak, low, ends, kind="cosine"):
    """OneCycleLR via piecewise_interpolate_schedule with torch's (possibly fractional) phase ends."""
    points = [init, peak, low] if len(ends) == 2 else [init, peak, init, low]
    scales = {e: points[i + 1] / points[i] for i, e in enumerate(ends)}
    return optax.piecewise_interpolate_schedule(kind, init, scales)


def _sgdr(lr, t0, mult, cycles, eta=0.0):
    return optax.sgdr_schedule([dict(init_value=lr, peak_value=lr, warmup_steps=0, decay_steps=t0 * mult ** i,
                                     end_value=eta) for i in range(cycles)])


def _cos_at(lr, T, e, eta=0.0):
    return eta + (lr - eta) * (1 + math.cos(math.pi * e / T)) / 2


# ----------------------------------------------------------------------------------------------------------
# the catalogue


def _cases() -> list:
    S = jaxsched
    o = optax
    cases = [
        # ---- every scheduler -------------------------------------------------------------------------------
        Case("LambdaLR two groups", "scheduler",
             lambda: S.LambdaLR((0.1, 0.01), lr_lambda=(lambda e: 0.5 ** e, lambda e: e + 1.0)), 30,
             "one lambda per parameter group; the lambda is applied at construction (index 0 = lr * f(0))",
             shown="LambdaLR((0.1, 0.01), lr_lambda=(lambda e: 0.5 ** e, lambda e: e + 1.0))",
             optax=OptaxExpert(lambda: _stack(o.exponential_decay(0.1, 1, 0.5), lambda k: 0.01 * (k + 1.0)),
                               "stack(exponential_decay(.1, 1, .5), lambda k: .01*(k+1)) (one per multi_transform label)")),
        Case("LambdaLR linear warm-up", "scheduler",
             lambda: S.LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 10)), 30,
             "a jnp-traceable lambda",
             shown="LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 10))",
             optax=OptaxExpert(lambda: (lambda k: 0.1 * jnp.minimum(1.0, (k + 1) / 10)),
                               "lambda k: .1 * jnp.minimum(1, (k+1)/10)")),
        Case("MultiplicativeLR constant factor", "scheduler",
             lambda: S.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.95), 50,
             "running product lr * f ** e; f(0) never used",
             shown="MultiplicativeLR(0.1, lr_lambda=lambda e: 0.95)",
             optax=OptaxExpert(lambda: o.exponential_decay(0.1, 1, 0.95), "exponential_decay(.1, 1, .95)")),
        Case("MultiplicativeLR step-dependent", "scheduler",
             lambda: S.MultiplicativeLR(0.1, lr_lambda=lambda e: jnp.where(e < 10, 0.9, 0.99)), 60,
             "the factor changes with the step: s(e) loops; torch multiplies f(1..e)",
             shown="MultiplicativeLR(0.1, lr_lambda=lambda e: jnp.where(e < 10, 0.9, 0.99))",
             optax=OptaxExpert(lambda: o.join_schedules([o.exponential_decay(0.1, 1, 0.9),
                                                         o.exponential_decay(0.1 * 0.9 ** 9, 1, 0.99)], [9]),
                               "join_schedules([exponential_decay(.1,1,.9), exponential_decay(.1*.9**9,1,.99)], [9])")),
        Case("StepLR", "scheduler", lambda: S.StepLR(0.1, step_size=3, gamma=0.5), 12,
             "decays when e % step_size == 0 (golden sequence of the semantics doc)",
             optax=OptaxExpert(lambda: o.exponential_decay(0.1, 3, 0.5, staircase=True),
                               "exponential_decay(.1, 3, .5, staircase=True)")),
        Case("MultiStepLR repeated milestone", "scheduler",
             lambda: S.MultiStepLR(0.1, milestones=[2, 5, 5, 7], gamma=0.1), 10,
             "milestones are a Counter: 5 listed twice decays by gamma**2 at once",
             optax=OptaxExpert(lambda: o.piecewise_constant_schedule(0.1, {2: 0.1, 5: 0.01, 7: 0.1}),
                               "piecewise_constant_schedule(.1, {2: .1, 5: .01, 7: .1}) (repeats folded by hand)")),
        Case("ConstantLR", "scheduler", lambda: S.ConstantLR(0.1), 10,
             "defaults factor=1/3, total_iters=5; torch restores with lr * (1/factor)",
             optax=OptaxExpert(lambda: o.join_schedules([o.constant_schedule(0.1 / 3), o.constant_schedule(0.1)],
                                                        [5]), "join_schedules([constant(.1/3), constant(.1)], [5])")),
        Case("LinearLR", "scheduler", lambda: S.LinearLR(0.1, start_factor=0.25, end_factor=1.0, total_iters=4), 8,
             "torch's recursive ratio vs the closed form",
             optax=OptaxExpert(lambda: o.linear_schedule(0.025, 0.1, 4), "linear_schedule(.025, .1, 4)")),
        Case("ExponentialLR", "scheduler", lambda: S.ExponentialLR(0.1, gamma=0.98), 300,
             "300 recursive multiplications in torch",
             optax=OptaxExpert(lambda: o.exponential_decay(0.1, 1, 0.98), "exponential_decay(.1, 1, .98)")),
        Case("PolynomialLR", "scheduler", lambda: S.PolynomialLR(0.1, total_iters=100, power=2.0), 120,
             "exactly 0 from total_iters on",
             optax=OptaxExpert(lambda: o.polynomial_schedule(0.1, 0.0, 2.0, 100), "polynomial_schedule(.1, 0, 2, 100)")),
        Case("CosineAnnealingLR", "scheduler", lambda: S.CosineAnnealingLR(0.1, T_max=50, eta_min=1e-3), 100,
             "run to 2*T_max: torch climbs back to lr (periodic, not clamped)",
             optax=OptaxExpert(lambda: o.piecewise_interpolate_schedule("cosine", 0.1, {50: 0.01, 100: 100.0}),
                               "piecewise_interpolate_schedule('cosine', .1, {50: .01, 100: 100}) (eta_min > 0 only)")),
        Case("CosineAnnealingWarmRestarts", "scheduler", lambda: S.CosineAnnealingWarmRestarts(0.1, T_0=4, eta_min=0.01),
             20, "restarts every T_0 steps, eta_min > 0",
             optax=OptaxExpert(lambda: _sgdr(0.1, 4, 1, 6, 0.01), "sgdr_schedule(6 cycles of 4, end_value=.01)")),
        Case("CyclicLR", "scheduler",
             lambda: S.CyclicLR(base_lr=1e-3, max_lr=6e-3, step_size_up=10, step_size_down=30), 200,
             "triangular, asymmetric, momentum cycled inversely (SGD momentum)",
             optax=OptaxExpert(lambda: _cyclic_segments(1e-3, 6e-3, 10, 30, 5, [1.0] * 5),
                               "join_schedules of linear up/down segments (5 cycles unrolled)",
                               momentum=lambda: _cyclic_momentum(0.8, 0.9, 10, 30, 5, [1.0] * 5))),
        Case("OneCycleLR", "scheduler", lambda: S.OneCycleLR(max_lr=0.1, total_steps=100), 100,
             "two phases ending at pct*T-1 = 29 and T-1 = 99; momentum 0.95 -> 0.85 -> 0.95",
             optax=OptaxExpert(lambda: _onecycle(0.004, 0.1, 0.004 / 1e4, (29, 99)),
                               "piecewise_interpolate_schedule('cosine', .004, {29: 25, 99: 1/(25*1e4)}) + momentum",
                               momentum=lambda: _onecycle(0.95, 0.85, 0.95, (29, 99)), steps=100)),
        Case("SWALR", "scheduler", lambda: S.SWALR(0.1, swa_lr=0.05, anneal_epochs=10), 20,
             "cosine anneal from the optimizer's LR to swa_lr",
             optax=OptaxExpert(lambda: o.piecewise_interpolate_schedule("cosine", 0.1, {10: 0.5}),
                               "piecewise_interpolate_schedule('cosine', .1, {10: .5})")),
        Case("SequentialLR", "scheduler",
             lambda: S.SequentialLR([S.ConstantLR(0.1, factor=0.1, total_iters=2), S.ExponentialLR(0.1, gamma=0.9)],
                                    milestones=[2]), 10,
             "torch docs example: at the milestone ExponentialLR restarts from the initial LR",
             optax=OptaxExpert(lambda: o.join_schedules([o.constant_schedule(0.01), o.exponential_decay(0.1, 1, 0.9)],
                                                        [2]), "join_schedules([constant(.01), exponential_decay(.1,1,.9)], [2])")),
        Case("ChainedScheduler", "scheduler",
             lambda: S.ChainedScheduler([S.ConstantLR(0.1, factor=0.1, total_iters=2), S.ExponentialLR(0.1, gamma=0.9)]),
             10, "torch docs example: both members multiply the LR the optimizer holds",
             optax=OptaxExpert(lambda: _product(o.join_schedules([o.constant_schedule(0.1), o.constant_schedule(1.0)], [2]),
                                                o.exponential_decay(0.1, 1, 0.9)),
                               "chain(scale_by_schedule(join([const .1, const 1],[2])), scale_by_learning_rate(exponential_decay(.1,1,.9)))")),
        # ---- recipes ---------------------------------------------------------------------------------------
        Case("ResNet ImageNet: StepLR(30, 0.1), 90 epochs", "recipe",
             lambda: S.StepLR(0.1, step_size=30, gamma=0.1), 90, "stepped once per epoch",
             optax=OptaxExpert(lambda: o.exponential_decay(0.1, 30, 0.1, staircase=True),
                               "exponential_decay(.1, 30, .1, staircase=True)")),
        Case("WRN CIFAR: MultiStepLR([60,120,160], 0.2), 200 epochs", "recipe",
             lambda: S.MultiStepLR(0.1, milestones=[60, 120, 160], gamma=0.2), 200, "stepped once per epoch",
             optax=OptaxExpert(lambda: o.piecewise_constant_schedule(0.1, {60: 0.2, 120: 0.2, 160: 0.2}),
                               "piecewise_constant_schedule(.1, {60: .2, 120: .2, 160: .2})")),
        Case("Linear warm-up then cosine (per step)", "recipe",
             lambda: S.SequentialLR([S.LinearLR(0.1, start_factor=0.01, total_iters=50),
                                     S.CosineAnnealingLR(0.1, T_max=950)], milestones=[50]), 1000,
             "SequentialLR([LinearLR(0.01, 50), CosineAnnealingLR(950)], [50]), 1000 optimizer steps",
             optax=OptaxExpert(lambda: o.join_schedules([o.linear_schedule(0.001, 0.1, 50),
                                                         o.cosine_decay_schedule(0.1, 950)], [50]),
                               "join_schedules([linear_schedule(.001, .1, 50), cosine_decay_schedule(.1, 950)], [50])")),
        Case("OneCycleLR with momentum, epochs=5 x 247 steps", "recipe",
             lambda: S.OneCycleLR(max_lr=0.01, epochs=5, steps_per_epoch=247), 1235,
             "phase end pct*T-1 = 369.5 is fractional: the peak is never hit exactly",
             optax=OptaxExpert(lambda: _onecycle(4e-4, 0.01, 4e-8, (369.5, 1234)),
                               "piecewise_interpolate_schedule('cosine', 4e-4, {369.5: 25, 1234: 1e-4}) (float key, undocumented) + momentum",
                               momentum=lambda: _onecycle(0.95, 0.85, 0.95, (369.5, 1234)), steps=1235)),
        Case("OneCycleLR with Adam (cycles betas[0])", "recipe",
             lambda: S.OneCycleLR(max_lr=0.1, total_steps=200), 200, "Adam's b1 is cycled instead of momentum",
             optimizer="adam",
             optax=OptaxExpert(lambda: _onecycle(0.004, 0.1, 4e-7, (59, 199)),
                               "piecewise_interpolate_schedule('cosine', ...) + inject_hyperparams(adam)(b1=...)",
                               momentum=lambda: _onecycle(0.95, 0.85, 0.95, (59, 199)), steps=200)),
        Case("CyclicLR triangular2 with momentum", "recipe",
             lambda: S.CyclicLR(base_lr=1e-3, max_lr=0.1, step_size_up=20, mode="triangular2"), 200,
             "the amplitude halves every cycle",
             optax=OptaxExpert(lambda: _cyclic_segments(1e-3, 0.1, 20, 20, 5, [0.5 ** c for c in range(5)]),
                               "join_schedules of linear segments with halving height (5 cycles unrolled) + momentum",
                               momentum=lambda: _cyclic_momentum(0.8, 0.9, 20, 20, 5, [0.5 ** c for c in range(5)]))),
        Case("CyclicLR exp_range", "recipe",
             lambda: S.CyclicLR(base_lr=1e-3, max_lr=0.1, step_size_up=20, mode="exp_range", gamma=0.995), 200,
             "amplitude gamma ** step inside every segment",
             optax=OptaxExpert(lambda: _cyclic_segments(1e-3, 0.1, 20, 20, 5, [0.995 ** (40 * c + 20) for c in range(5)]),
                               "not expressible: nearest is linear segments with peak height gamma**t_peak",
                               exact=False)),
        Case("Warm restarts T_0=10, T_mult=2", "recipe",
             lambda: S.CosineAnnealingWarmRestarts(0.1, T_0=10, T_mult=2), 310, "cycles of 10, 20, 40, 80, 160 steps",
             optax=OptaxExpert(lambda: _sgdr(0.1, 10, 2, 6), "sgdr_schedule(decay_steps=10*2**i, 6 cycles)")),
        Case("SWALR after cosine (SWA recipe)", "recipe",
             lambda: S.SequentialLR([S.CosineAnnealingLR(0.1, T_max=100),
                                     S.SWALR(0.1, swa_lr=0.01, anneal_epochs=10)], milestones=[75]), 100,
             "SWALR anneals from whatever LR the cosine left at epoch 74",
             optax=OptaxExpert(lambda: o.join_schedules([
                 o.cosine_decay_schedule(0.1, 100),
                 o.piecewise_interpolate_schedule("cosine", _cos_at(0.1, 100, 74), {10: 0.01 / _cos_at(0.1, 100, 74)})],
                 [75]), "join_schedules([cosine_decay(.1, 100), piecewise_interpolate('cosine', v74, {10: .01/v74})], [75]) (v74 by hand)")),
        Case("Transformer inverse-sqrt warm-up (LambdaLR)", "recipe",
             lambda: S.LambdaLR(1e-3, lr_lambda=lambda e: jnp.minimum((e + 1) / 400, jnp.sqrt(400 / (e + 1)))), 4000,
             "Noam schedule, 400 warm-up steps",
             shown="LambdaLR(1e-3, lr_lambda=lambda e: jnp.minimum((e + 1) / 400, jnp.sqrt(400 / (e + 1))))",
             optax=OptaxExpert(lambda: (lambda k: 1e-3 * jnp.minimum((k + 1) / 400, jnp.sqrt(400 / (k + 1)))),
                               "custom lambda (no built-in inverse-sqrt)")),
        Case("EfficientNet-style StepLR(3, 0.97) from 0.256", "recipe",
             lambda: S.StepLR(0.256, step_size=3, gamma=0.97), 300, "gamma close to 1, 100 decays",
             optax=OptaxExpert(lambda: o.exponential_decay(0.256, 3, 0.97, staircase=True),
                               "exponential_decay(.256, 3, .97, staircase=True)")),
        Case("Warm-up then MultiStepLR", "recipe",
             lambda: S.SequentialLR([S.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                     S.MultiStepLR(0.1, milestones=[30, 60])], milestones=[5]), 90,
             "MultiStepLR milestones count from the SequentialLR milestone",
             optax=OptaxExpert(lambda: o.join_schedules([o.linear_schedule(0.01, 0.1, 5),
                                                         o.piecewise_constant_schedule(0.1, {30: 0.1, 60: 0.1})], [5]),
                               "join_schedules([linear(.01, .1, 5), piecewise_constant(.1, {30: .1, 60: .1})], [5])")),
        # ---- edge cases ------------------------------------------------------------------------------------
        Case("MultiStepLR milestone 0", "edge", lambda: S.MultiStepLR(0.1, milestones=[0, 2], gamma=0.5), 5,
             "a milestone 0 applies at construction",
             optax=OptaxExpert(lambda: o.piecewise_constant_schedule(0.05, {2: 0.5}), "piecewise_constant_schedule(.05, {2: .5})")),
        Case("ConstantLR total_iters=0", "edge", lambda: S.ConstantLR(0.1, factor=0.5, total_iters=0), 8,
             "torch applies factor at construction and never restores it",
             optax=OptaxExpert(lambda: o.constant_schedule(0.05), "constant_schedule(.05)")),
        Case("LinearLR total_iters=0", "edge", lambda: S.LinearLR(0.1, start_factor=0.5, total_iters=0), 8,
             "torch's recursion stays at lr * start_factor (its closed form would divide by zero)",
             optax=OptaxExpert(lambda: o.constant_schedule(0.05), "constant_schedule(.05)")),
        Case("LinearLR 1 -> 0 ends at exactly 0", "edge",
             lambda: S.LinearLR(0.1, start_factor=1.0, end_factor=0.0, total_iters=100), 110,
             "torch reaches exactly 0.0; jitted optax leaves +-1e-9 (FMA)",
             optax=OptaxExpert(lambda: o.linear_schedule(0.1, 0.0, 100), "linear_schedule(.1, 0, 100)")),
        Case("PolynomialLR power 0.9 past total_iters", "edge",
             lambda: S.PolynomialLR(0.01, total_iters=1000, power=0.9), 1010,
             "optax's polynomial_schedule is NaN under jit for counts >= 1000",
             optax=OptaxExpert(lambda: o.polynomial_schedule(0.01, 0.0, 0.9, 1000), "polynomial_schedule(.01, 0, .9, 1000)")),
        Case("PolynomialLR total_iters=0", "edge", lambda: S.PolynomialLR(0.1, total_iters=0), 5,
             "torch's recursion leaves the LR unchanged",
             optax=OptaxExpert(lambda: o.constant_schedule(0.1), "constant_schedule(.1)")),
        Case("CosineAnnealingLR past T_max, eta_min=0", "edge", lambda: S.CosineAnnealingLR(0.1, T_max=50), 200,
             "periodic: back to lr at 2*T_max; additive branch at T+1",
             optax=OptaxExpert(lambda: o.cosine_decay_schedule(0.1, 50),
                               "not expressible: cosine_decay_schedule(.1, 50) clamps at 0", exact=False)),
        Case("CosineAnnealingLR T_max=7, 100 periods", "edge",
             lambda: S.CosineAnnealingLR(0.1, T_max=7, eta_min=1e-2), 700,
             "torch's recursion drifts ~1e-13 over many periods",
             optax=OptaxExpert(lambda: o.piecewise_interpolate_schedule(
                 "cosine", 0.1, {7 * i: (0.1 if i % 2 == 0 else 0.01) / (0.01 if i % 2 == 0 else 0.1) for i in range(1, 101)}),
                 "piecewise_interpolate_schedule('cosine', .1, 100 boundaries)")),
        Case("CosineAnnealingLR T_max=5000 tail", "edge", lambda: S.CosineAnnealingLR(0.1, T_max=5000), 5000,
             "1 + cos cancels in float32 near the minimum",
             optax=OptaxExpert(lambda: o.cosine_decay_schedule(0.1, 5000), "cosine_decay_schedule(.1, 5000)")),
        Case("CosineAnnealingWarmRestarts T_0=1, T_mult=3", "edge",
             lambda: S.CosineAnnealingWarmRestarts(0.1, T_0=1, T_mult=3), 400,
             "restart at 121 where torch's step(epoch) log formula rounds down; step() is exact",
             optax=OptaxExpert(lambda: _sgdr(0.1, 1, 3, 7), "sgdr_schedule(decay_steps=3**i, 7 cycles)")),
        Case("OneCycleLR total_steps=5: peak never hit", "edge", lambda: S.OneCycleLR(max_lr=1.0, total_steps=5), 5,
             "pct*T-1 = 0.5; index 5 extrapolates past min_lr",
             optax=OptaxExpert(lambda: _onecycle(0.04, 1.0, 4e-6, (0.5, 4)),
                               "piecewise_interpolate_schedule('cosine', .04, {0.5: 25, 4: 1e-4}) + momentum",
                               momentum=lambda: _onecycle(0.95, 0.85, 0.95, (0.5, 4)), steps=5)),
        Case("OneCycleLR linear: index T goes negative", "edge",
             lambda: S.OneCycleLR(max_lr=0.1, total_steps=100, anneal_strategy="linear"), 100,
             "the linear anneal extrapolates below min_lr at index total_steps",
             optax=OptaxExpert(lambda: _onecycle(0.004, 0.1, 4e-7, (29, 99), "linear"),
                               "piecewise_interpolate_schedule('linear', .004, {29: 25, 99: 1e-4}) + momentum",
                               momentum=lambda: _onecycle(0.95, 0.85, 0.95, (29, 99), "linear"), steps=100)),
        Case("OneCycleLR three-phase cos", "edge",
             lambda: S.OneCycleLR(max_lr=0.1, total_steps=1000, pct_start=0.25, three_phase=True), 1000,
             "phase ends 249, 498, 999",
             optax=OptaxExpert(lambda: _onecycle(0.004, 0.1, 4e-7, (249, 498, 999)),
                               "piecewise_interpolate_schedule('cosine', .004, {249: 25, 498: 1/25, 999: 1e-4}) + momentum",
                               momentum=lambda: optax.piecewise_interpolate_schedule(
                                   "cosine", 0.95, {249: 0.85 / 0.95, 498: 0.95 / 0.85}), steps=1000)),
        Case("OneCycleLR first phase before index 0", "edge",
             lambda: S.OneCycleLR(max_lr=1.0, total_steps=10, pct_start=0.05), 10,
             "pct*T-1 = -0.5 < 0: index 0 already lies in the annealing phase"),
        Case("OneCycleLR total_steps=1", "edge", lambda: S.OneCycleLR(max_lr=1.0, total_steps=1), 1,
             "two values: 4e-6 then the extrapolated 0.611"),
        Case("OneCycleLR per-group max_lr", "edge",
             lambda: S.OneCycleLR(max_lr=(1.0, 2.0), total_steps=10, div_factor=10.0, final_div_factor=100.0), 10,
             "two parameter groups, one max_lr each"),
        Case("CyclicLR with Adam (cycles betas[0])", "edge",
             lambda: S.CyclicLR(base_lr=1e-3, max_lr=6e-3, step_size_up=10), 100, "b1 cycles between 0.8 and 0.9",
             optimizer="adam",
             optax=OptaxExpert(lambda: _cyclic_segments(1e-3, 6e-3, 10, 10, 5, [1.0] * 5),
                               "join_schedules of linear segments + inject_hyperparams(adam)(b1=...)",
                               momentum=lambda: _cyclic_momentum(0.8, 0.9, 10, 10, 5, [1.0] * 5))),
        Case("CyclicLR fractional step sizes", "edge",
             lambda: S.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2.5, step_size_down=3.5), 60,
             "torch accepts float step sizes; x <= step_ratio decides the phase"),
        Case("CyclicLR per-group, scale_fn by cycle", "edge",
             lambda: S.CyclicLR(base_lr=(1e-3, 1e-4), max_lr=(0.1, 0.01), step_size_up=5,
                                scale_fn=lambda c: 1.0 / c, scale_mode="cycle"), 60,
             "a custom amplitude 1/cycle, two parameter groups",
             shown="CyclicLR(base_lr=(1e-3, 1e-4), max_lr=(0.1, 0.01), step_size_up=5, "
                   "scale_fn=lambda c: 1.0 / c, scale_mode='cycle')"),
        Case("SWALR anneal_epochs=0", "edge", lambda: S.SWALR(0.1, swa_lr=0.01, anneal_epochs=0), 5,
             "swa_lr already at index 0",
             optax=OptaxExpert(lambda: o.constant_schedule(0.01), "constant_schedule(.01)")),
        Case("SWALR two groups, linear", "edge",
             lambda: S.SWALR((0.1, 0.5), swa_lr=(0.01, 0.05), anneal_epochs=3, anneal_strategy="linear"), 6,
             "golden sequence of the semantics doc",
             optax=OptaxExpert(lambda: _stack(o.piecewise_interpolate_schedule("linear", 0.1, {3: 0.1}),
                                              o.piecewise_interpolate_schedule("linear", 0.5, {3: 0.1})),
                               "stack(piecewise_interpolate('linear', .1, {3: .1}), piecewise_interpolate('linear', .5, {3: .1}))")),
        Case("SequentialLR into MultiplicativeLR", "edge",
             lambda: S.SequentialLR([S.ExponentialLR(0.1, gamma=0.5), S.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.9)],
                                    milestones=[3]), 10,
             "at the milestone MultiplicativeLR applies f(0) to the LR the optimizer holds",
             shown="SequentialLR([ExponentialLR(0.1, gamma=0.5), MultiplicativeLR(0.1, lr_lambda=lambda e: 0.9)], milestones=[3])",
             optax=OptaxExpert(lambda: o.join_schedules([o.exponential_decay(0.1, 1, 0.5),
                                                         o.exponential_decay(0.1 * 0.25 * 0.9, 1, 0.9)], [3]),
                               "join_schedules([exponential_decay(.1,1,.5), exponential_decay(.0225,1,.9)], [3]) (start by hand)")),
        Case("ChainedScheduler with an affine member", "edge",
             lambda: S.ChainedScheduler([S.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                         S.CosineAnnealingLR(0.1, T_max=50, eta_min=1e-3)]), 120,
             "CosineAnnealingLR with eta_min > 0 adds to the LR LinearLR scaled: not a product",
             optax=OptaxExpert(lambda: _product(o.linear_schedule(0.1, 1.0, 5), o.cosine_decay_schedule(0.1, 50, alpha=0.01)),
                               "not expressible: nearest is chain(scale_by_schedule(linear), cosine_decay(alpha))",
                               exact=False)),
        Case("ExponentialLR gamma > 1", "edge", lambda: S.ExponentialLR(1e-3, gamma=1.02), 200,
             "torch accepts a growing LR",
             optax=OptaxExpert(lambda: o.exponential_decay(1e-3, 1, 1.02), "exponential_decay(1e-3, 1, 1.02)")),
        Case("MultiplicativeLR 1/(e+1)", "edge", lambda: S.MultiplicativeLR(0.1, lr_lambda=lambda e: 1.0 / (e + 1)), 12,
             "the running product falls to 1e-10 of lr",
             shown="MultiplicativeLR(0.1, lr_lambda=lambda e: 1.0 / (e + 1))"),
    ]
    cases.append(PlateauCase(
        "ReduceLROnPlateau on a recorded loss curve", "recipe", 0.1,
        dict(mode="min", factor=0.5, patience=3, threshold=1e-4, cooldown=2, min_lr=1e-4),
        recorded_loss_curve(),
        "factor .5, patience 3, cooldown 2, min_lr 1e-4; torch cuts on the (patience+1)-th bad epoch",
        optax=OptaxExpert(lambda: None, "chain(sgd(.1), contrib.reduce_on_plateau(.5, patience=4, rtol=1e-4, "
                                        "cooldown=2, min_scale=1e-3))")))
    cases.append(PlateauCase(
        "ReduceLROnPlateau eps floor, never improving", "edge", 1e-4, dict(mode="min", factor=0.1, patience=2),
        (1.0,) * 40,
        "torch skips a cut that changes the LR by <= eps=1e-8, so the LR floors after 4 cuts",
        optax=OptaxExpert(lambda: None, "not expressible (no eps): nearest is contrib.reduce_on_plateau(patience=3), "
                                        "which keeps cutting", exact=False)))
    return cases


CASES: list = _cases()


def select(only: str | None = None) -> list:
    """The cases whose name contains ``only`` (case-insensitive); all cases for None."""
    if not only:
        return list(CASES)
    chosen = [c for c in CASES if only.lower() in c.name.lower()]
    if not chosen:
        names = "\n  ".join(c.name for c in CASES)
        raise SystemExit(f"parity: no case name contains {only!r}. Cases:\n  {names}")
    return chosen
