"""``from_torch`` driven by the catalogue: every catalogued torch class converts back to the class that mirrors it,
and only torch's own classes are converted (a subclass that changes how the LR is computed is refused)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxsched
from jaxsched._torch import counterpart_of
from jaxsched._value import CATALOGUE
from parity.torch_ref import build, initial_lrs, make_optimizer
from tests.strategies import examples, has_callable

TORCH_EXAMPLES = [(n, s) for n, s in examples() if (type(s)._mirrors or "").startswith("torch.")]
#: The round trip needs a traceable lr_lambda on the way back; the runner gives torch a Python-float one.
PLAIN = [(n, s) for n, s in TORCH_EXAMPLES if not has_callable(s)]


def _opt(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_every_catalogued_torch_class_is_covered():
    mirrored = {cls for path, cls in CATALOGUE.items() if path.startswith("torch.")}
    assert {type(s) for _, s in TORCH_EXAMPLES} | {jaxsched.ReduceLROnPlateau} == mirrored


@pytest.mark.parametrize("name,s", PLAIN, ids=[n for n, _ in PLAIN])
def test_round_trip_through_torch(name, s):
    """jaxsched -> torch (the runner reads the catalogue) -> jaxsched (from_torch reads it): the same class and
    the same LRs, fresh and after some steps."""
    opt = make_optimizer(initial_lrs(s))
    sched = build(s, opt)
    assert counterpart_of(sched) is type(s)
    back = jaxsched.from_torch(sched)
    assert type(back) is type(s)
    np.testing.assert_allclose(np.asarray(back(np.arange(30))), np.asarray(s(np.arange(30))), rtol=1e-6, atol=1e-9)
    for _ in range(7):
        opt.step()
        sched.step()
    later = jaxsched.from_torch(sched)
    np.testing.assert_allclose(np.asarray(later(np.arange(20))), np.asarray(s(np.arange(7, 27))), rtol=1e-5,
                               atol=1e-9)


def test_plateau_round_trip():
    opt = _opt()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for loss in [1.0, 1.0, 1.0, 1.0]:
        opt.step()
        sched.step(loss)
    p, state = jaxsched.from_torch(sched)
    assert type(p) is jaxsched.ReduceLROnPlateau
    assert float(p(state)) == pytest.approx(opt.param_groups[0]["lr"])


def test_a_subclass_that_overrides_get_lr_is_refused():
    """issue 15 finding 9: the same name, another LR. Converting it as torch's StepLR would be silently wrong."""

    class StepLR(torch.optim.lr_scheduler.StepLR):
        def get_lr(self):
            return [2 * lr for lr in super().get_lr()]

    with pytest.raises(TypeError, match=r"subclasses torch's StepLR and overrides get_lr"):
        jaxsched.from_torch(StepLR(_opt(), step_size=3))


def test_a_subclass_that_only_sets_defaults_is_converted():
    class Decay(torch.optim.lr_scheduler.ExponentialLR):
        def __init__(self, optimizer):
            super().__init__(optimizer, gamma=0.5)

    assert jaxsched.from_torch(Decay(_opt())) == jaxsched.ExponentialLR(0.1, gamma=0.5)


def test_an_unknown_scheduler_is_refused_with_the_known_ones():
    class Mine(torch.optim.lr_scheduler.LRScheduler):
        def get_lr(self):
            return [0.1 for _ in self.optimizer.param_groups]

    with pytest.raises(TypeError, match=r"no jaxsched counterpart for torch scheduler .*Mine.*StepLR"):
        jaxsched.from_torch(Mine(_opt()))
