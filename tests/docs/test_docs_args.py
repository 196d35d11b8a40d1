"""Every public class documents its constructor: a Google-style ``Args:`` section (``Attributes:`` for a
NamedTuple state) naming every parameter, and stating each default.

Public classes are those in ``jaxsched.__all__`` and every class of ``jaxsched.CATALOGUE`` (the API pages and
the schedule pages are generated from these docstrings). ``MISSING`` lists the classes that did not have the
section yet when this test was written (2026-11-30); each is an expected failure that turns into a failure
when it gets its section (remove it from the list then), so the list can only shrink, and a new class
without the section fails at once.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

import jaxsched

ROOT = Path(__file__).resolve().parents[2]

MISSING: set[str] = set()


def public_classes() -> dict[str, type]:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        hooks = importlib.import_module("hooks")   # docs/hooks.py: what the site documents
    finally:
        sys.path.remove(str(ROOT / "docs"))
    out = {f"jaxsched.{n}": getattr(jaxsched, n) for n in jaxsched.__all__ if inspect.isclass(getattr(jaxsched, n))}
    for _, _, cls in hooks.catalogue():
        out.setdefault(hooks.public_path(cls), cls)
    return out


def parameters(cls) -> list[inspect.Parameter]:
    if issubclass(cls, BaseException):
        return []
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def entries(doc: str) -> dict[str, str] | None:
    """``{name: description}`` of the ``Args:`` (or ``Attributes:``) section, or None without one."""
    m = re.search(r"^(?:Args|Attributes):[ \t]*\n((?:[ \t]+\S.*\n?|[ \t]*\n)+)", doc, re.M)
    if not m:
        return None
    out: dict[str, str] = {}
    name = None
    for line in m.group(1).splitlines():
        e = re.match(r"^ {2,4}(\*{0,2}\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if e:
            name = e.group(1).lstrip("*")
            out[name] = e.group(2)
        elif name and line.strip():
            out[name] += " " + line.strip()
    return out


def _default_texts(value) -> list[str]:
    texts = [repr(value), str(value)]
    if isinstance(value, float):
        short = re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), f"{value:.0e}")
        texts += [f"{value:g}", short]
        if value == 1 / 3:
            texts += ["1/3", "1 / 3"]
    if isinstance(value, str):
        texts += [f"'{value}'", f'"{value}"', f"``{value}``"]
    return texts


def problems(cls) -> list[str]:
    params = parameters(cls)
    if not params:
        return []
    found = entries(inspect.getdoc(cls) or "")
    if found is None:
        return [f"no Args: section (parameters: {', '.join(p.name for p in params)})"]
    out = []
    for p in params:
        if p.name not in found:
            out.append(f"Args: has no entry for {p.name!r}")
        elif p.default is not p.empty and not any(t in found[p.name] for t in _default_texts(p.default)):
            out.append(f"the entry for {p.name!r} does not state its default {p.default!r}")
    return out


CLASSES = public_classes()


def test_the_missing_list_names_real_classes():
    assert MISSING <= set(CLASSES), sorted(MISSING - set(CLASSES))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_public_class_documents_its_arguments(name, request):
    if name in MISSING:
        request.applymarker(pytest.mark.xfail(strict=True, reason="in MISSING: Args: section missing or incomplete"))
    found = problems(CLASSES[name])
    assert not found, f"{name}: " + "; ".join(found)


def test_the_check_can_fail():
    class Documented:
        """A class.

        Args:
          lr: the learning rate.
          gamma: the factor. Default 0.1.
        """

        def __init__(self, lr, gamma=0.1):
            pass

    class NoDefault(Documented):
        """A class.

        Args:
          lr: the learning rate.
          gamma: the factor.
        """

    class NoSection(Documented):
        """A class without arguments documented."""

    assert problems(Documented) == []
    assert problems(NoDefault) == ["the entry for 'gamma' does not state its default 0.1"]
    assert problems(NoSection) == ["no Args: section (parameters: lr, gamma)"]
