"""SWALR: torch.optim.swa_utils.SWALR, the annealing to the stochastic-weight-averaging LR."""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from . import _checks as checks
from ._base import LR, Affine, Schedule, leaf, static
from ._checks import check_lengths
from ._numerics import arr


class SWALR(Schedule, mirrors="torch.optim.swa_utils.SWALR"):
    """Anneal to ``swa_lr`` over ``anneal_epochs`` steps: torch.optim.swa_utils.SWALR.

    ``lr_e = swa_lr * a(e) + lr * (1 - a(e))`` with ``a`` the cosine (``(1 - cos(pi t)) / 2``) or linear
    ramp of ``t = e / anneal_epochs``, then ``swa_lr``. ``lr`` is the LR the optimizer holds when SWALR is
    created; after a SequentialLR milestone SWALR anneals from whatever LR the previous schedule left.

    Args:
      lr: the LR held before annealing; a tuple for several parameter groups.
      swa_lr: the LR annealed to.
      anneal_epochs: steps of the annealing. Default 10.
      anneal_strategy: ``'cos'`` or ``'linear'``. Default 'cos'.

    >>> import jaxsched
    >>> s = jaxsched.SWALR(0.1, swa_lr=0.01, anneal_epochs=4, anneal_strategy="linear")
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.1, 0.0775, 0.055, 0.0325, 0.01, 0.01]
    """

    lr: LR = leaf(check=checks.lr)
    swa_lr: LR = leaf(check=checks.lr)
    anneal_epochs: int = static(default=10)
    anneal_strategy: str = static(default="cos", check=checks.choice("cos", "linear"))

    _uses_prev = True
    _group_keys = ("swa_lr",)

    def _validate(self):
        c = "SWALR"
        check_lengths(c, lr=self.lr, swa_lr=self.swa_lr)
        a = self.anneal_epochs
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or a < 0:
            raise ValueError(f"SWALR: anneal_epochs must be equal or greater than 0, got anneal_epochs={a!r}.")
        self._set("anneal_epochs", checks.check_steps(c, "anneal_epochs", int(a)))

    def _ramp(self, t):
        """``(alpha, 1 - alpha)`` at ``t``, the second computed directly (no cancellation near alpha = 1)."""
        if self.anneal_strategy == "cos":
            end = t >= 1.0  # exactly (1, 0) there, as torch's (1 - cos(pi)) / 2 is
            a = jnp.where(end, 1.0, jnp.sin(jnp.pi * t / 2) ** 2)
            return a, jnp.where(end, 0.0, jnp.cos(jnp.pi * t / 2) ** 2)
        return t, 1.0 - t

    def _t(self, step, dtype):
        """torch's interpolation time at its step counter ``step`` (``_step_count - 1``)."""
        A = self.anneal_epochs
        if A == 0:
            step = jnp.maximum(step, 1)
        return jnp.clip(step.astype(dtype) / max(1, A), 0.0, 1.0)

    def _anneal(self, start, j, dtype):
        a, rest = self._ramp(self._t(j, dtype))
        return arr(self.swa_lr, dtype) * a + start * rest

    def _get_closed_form_lr(self, e, dtype):
        return self._anneal(arr(self.lr, dtype), e, dtype)

    def _restart(self, prev, j, dtype):
        return self._anneal(prev, j, dtype)

    def _get_initial_lr(self, dtype):
        if self.anneal_epochs == 0:
            return Affine(0.0, arr(self.swa_lr, dtype))
        return Affine(1.0, 0.0)

    def _restart_affine(self, dtype):
        # After a SequentialLR milestone SWALR anneals from the LR the optimizer holds (its constructor's map).
        return self._get_initial_lr(dtype)

    def _get_lr(self, e, dtype):
        # torch inverts its previous interpolation to recover the start LR, L0 = (lr - a' swa) / (1 - a'),
        # then interpolates again, swa a + L0 (1 - a): that is lr_new = swa + A (lr - swa) with
        # A = (1 - a) / (1 - a'), and just swa once a' == 1 (the annealing is over).
        swa = arr(self.swa_lr, dtype)
        A_ep = self.anneal_epochs
        step = jnp.maximum(e, 1) if A_ep == 0 else e
        done = (step - 1) >= max(1, A_ep)
        _, rest_prev = self._ramp(self._t(step - 1, dtype) if A_ep else
                                  jnp.clip((step - 1).astype(dtype), 0.0, 1.0))
        _, rest = self._ramp(self._t(e, dtype))
        A = jnp.where(done, 0.0, rest / jnp.where(done, 1.0, rest_prev))
        return Affine(A, swa * (1.0 - A))
