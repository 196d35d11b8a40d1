"""A griffe extension for the API pages: each value class gets the ``__init__`` its field declarations make.

jaxsched's classes are dataclasses made by ``Value.__init_subclass__``, and their fields are declared with
``leaf(...)``/``static(...)``, so griffe, which reads the source without running it, sees neither a constructor
nor a default. For every class of the package with such fields (its own and its bases', in dataclass order:
bases first, a redeclared field keeps its place), this adds an ``__init__`` whose parameters carry the field's
annotation and its ``default=`` (none: required; ``init=False``: not a parameter). mkdocstrings then fills the
Type and Default columns of the Args table and the signature from it (``merge_init_into_class``).
"""

from __future__ import annotations

from typing import Any

import griffe

SPECIFIERS = {"leaf", "static"}


def _keywords(value: Any) -> dict[str, Any] | None:
    """The keyword arguments of a ``leaf(...)``/``static(...)`` call, or None when ``value`` is not one."""
    if not isinstance(value, griffe.ExprCall) or str(value.function).rsplit(".", 1)[-1] not in SPECIFIERS:
        return None
    return {a.name: a.value for a in value.arguments if isinstance(a, griffe.ExprKeyword)}


def _fields(cls: griffe.Class) -> dict[str, tuple[griffe.Attribute, dict[str, Any]]]:
    try:
        chain = [*reversed(cls.mro()), cls]
    except Exception:  # noqa: BLE001 - a base griffe cannot resolve: the class's own fields only
        chain = [cls]
    fields: dict[str, tuple[griffe.Attribute, dict[str, Any]]] = {}
    for c in chain:
        for name, member in c.members.items():
            if member.is_alias or not isinstance(member, griffe.Attribute):
                continue
            kw = _keywords(member.value)
            if kw is not None:
                fields[name] = (member, kw)  # a redeclared field keeps its first place, as in dataclasses
    return fields


def _classes(obj: griffe.Object):
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Class):
            yield member
        if isinstance(member, (griffe.Module, griffe.Class)):
            yield from _classes(member)


class FieldSignatures(griffe.Extension):
    """Give every class declared with ``leaf``/``static`` fields its dataclass ``__init__``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for cls in _classes(pkg):
            if "__init__" in cls.members:
                continue
            fields = _fields(cls)
            if not fields:
                continue
            params = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
            for name, (attr, kw) in fields.items():
                if str(kw.get("init", "True")) == "False":
                    continue
                params.append(griffe.Parameter(name, annotation=attr.annotation,
                                               kind=griffe.ParameterKind.positional_or_keyword,
                                               default=kw.get("default")))
            init = griffe.Function("__init__", parameters=griffe.Parameters(*params), returns="None",
                                   lineno=cls.lineno, endlineno=cls.lineno)
            cls.set_member("__init__", init)
            init.labels.add("dataclass-field-init")
