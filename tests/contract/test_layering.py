"""The package's layering and the class attributes that replaced isinstance ladders (issue 20).

* No import circle in ``jaxsched/``, counting imports inside functions; no catalogue module imports a converter
  (``_torch``, ``_frameworks``): the converters read what the classes declare.
* A new registered class is checked by the contract suites through its docstring example, with no test-list edit.
* ``Schedule._group_keys`` and ``Schedule._loops`` decide what the composites and ``Running`` used to decide by
  class: a class outside the package that declares them is treated the same way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jax.numpy as jnp
import pytest

import jaxsched
from jaxsched import _checks as checks
from jaxsched._base import LR, MultiplicativeSchedule, Schedule, leaf, static
from jaxsched._numerics import arr
from jaxsched._value import CATALOGUE, REGISTRY
from tests import strategies

PKG = Path(jaxsched.__file__).parent
CONVERTERS = {"jaxsched._torch", "jaxsched._frameworks"}


def _imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere (inside functions too); package __init__s left out."""
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    inits = {m for m, f in mods.items() if f.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for m, f in mods.items():
        if m in inits:
            continue
        here = m.split(".")[:-1]
        out = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            out.update(n for n in names if n in mods and n not in inits and n != m)
        graph[m] = out
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = _imports()
    assert "jaxsched._torch" in graph and graph["jaxsched._torch"], "the import graph was not read"
    assert _circles(graph) == []


def test_no_catalogue_module_imports_a_converter():
    graph = _imports()
    users = {m: sorted(graph[m] & CONVERTERS) for m in graph if m not in CONVERTERS and graph[m] & CONVERTERS}
    assert users == {}


# -- a new class needs no test-list edit -----------------------------------------------------------------------


def test_a_new_class_is_checked_through_its_docstring_example():
    class HalvingLR(MultiplicativeSchedule):
        """``lr / 2 ** (e // every)``.

        >>> import jaxsched
        >>> s = jaxsched.REGISTRY["HalvingLR"](0.1, every=2)
        """

        lr: LR = leaf(check=checks.lr)
        every: int = static(check=checks.integer(1))

        def _factor(self, e, dtype):
            return arr(0.5, dtype) ** (e // self.every).astype(dtype)

    try:
        found = dict(strategies.examples())
        assert found["HalvingLR-docstring"] == HalvingLR(0.1, every=2)
        assert "HalvingLR" not in str(strategies.missing_examples())
        HalvingLR.__doc__ = "No example."
        assert any(n.endswith(".HalvingLR") for n in strategies.missing_examples()["examples()"])
    finally:
        REGISTRY.pop("HalvingLR", None)
    assert not any(c is HalvingLR for c in CATALOGUE.values())


# -- class attributes instead of isinstance ladders -------------------------------------------------------------


class _Anneal(Schedule):
    """A schedule that keeps ``target`` in the optimizer's param groups, as torch's SWALR keeps swa_lr."""

    lr: LR = leaf(check=checks.lr)
    target: float = leaf(default=0.01)

    _group_keys = ("target",)

    def _get_closed_form_lr(self, e, dtype):
        return jnp.where(e > 0, arr(self.target, dtype), arr(self.lr, dtype))


def test_composite_members_agree_on_their_group_keys():
    with pytest.raises(ValueError, match=r"^SequentialLR: schedulers\[1\] has swa_lr=0\.02 but schedulers\[0\] has "
                                         r"swa_lr=0\.01: torch's SWALR stores swa_lr"):
        jaxsched.SequentialLR([jaxsched.SWALR(0.1, swa_lr=0.01), jaxsched.SWALR(0.1, swa_lr=0.02)], milestones=[3])
    with pytest.raises(ValueError, match=r"^ChainedScheduler: schedulers\[2\] has target=0\.5"):
        jaxsched.ChainedScheduler([_Anneal(0.1), jaxsched.StepLR(0.1, 2), _Anneal(0.1, target=0.5)])
    jaxsched.ChainedScheduler([_Anneal(0.1), jaxsched.StepLR(0.1, 2), _Anneal(0.1)])  # agreeing: accepted


def test_loops_says_why_and_propagates_through_wrappers_and_composites():
    stepdep = jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 1.0 - 0.01 * e)
    assert stepdep._loops is not None and "lr_lambda" in stepdep._loops
    assert jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.9)._loops is None
    assert jaxsched.StepLR(0.1, 2)._loops is None
    for wrapped in (jaxsched.Offset(stepdep, 3), jaxsched.PerEpoch(stepdep, 2), jaxsched.LinearWarmup(stepdep, 2)):
        assert wrapped._loops == stepdep._loops
    seq = jaxsched.SequentialLR([jaxsched.StepLR(0.1, 2), stepdep], milestones=[4])
    assert seq._loops is not None and seq._loops.startswith("schedulers[1] is a MultiplicativeLR")
    chained = jaxsched.ChainedScheduler([jaxsched.CosineAnnealingLR(0.1, 5), jaxsched.StepLR(0.1, 2)])
    assert chained._loops is not None and not chained.closed_form
    assert jaxsched.ChainedScheduler([jaxsched.StepLR(0.1, 2), jaxsched.ExponentialLR(0.1, 0.9)])._loops is None
