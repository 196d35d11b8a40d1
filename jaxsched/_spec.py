"""Parse a schedule written as its constructor call, without ``eval``.

``parse_spec("OneCycleLR(max_lr=0.1, total_steps=100)")`` returns the schedule. Arguments may be numbers,
strings, booleans, None, lists and tuples of those, and nested schedule calls (for SequentialLR and
ChainedScheduler). Anything else (names, lambdas, attribute access, arithmetic beyond a unary minus) is
rejected with an error that names the offending part.
"""

from __future__ import annotations

import ast

from ._base import REGISTRY, Schedule


def _names() -> str:
    return ", ".join(sorted(k for k in REGISTRY if not k.startswith("_")))


class SpecError(ValueError):
    """A schedule spec that cannot be parsed."""


def parse_spec(text: str) -> Schedule:
    """The schedule that the constructor call ``text`` describes (parsed, never evaluated)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise SpecError(f"schedule spec {text!r} is not a constructor call: {err.msg}. "
                        f"Write e.g. 'StepLR(0.1, step_size=30)'. Known schedules: {_names()}.") from None
    return _node(tree.body, text)


def _node(node, text):
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise SpecError(f"in schedule spec {text!r}: {ast.unparse(node.func)!r} is not a schedule name. "
                            f"Known schedules: {_names()}.")
        name = node.func.id
        if name not in REGISTRY or name.startswith("_"):
            raise SpecError(f"in schedule spec {text!r}: unknown schedule {name!r}. Known schedules: {_names()}.")
        args = [_node(a, text) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise SpecError(f"in schedule spec {text!r}: '**' arguments are not supported.")
            kwargs[kw.arg] = _node(kw.value, text)
        try:
            return REGISTRY[name](*args, **kwargs)
        except TypeError as err:
            raise SpecError(f"in schedule spec {text!r}: {err}") from None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        v = node.operand.value
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.List):
        return [_node(x, text) for x in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_node(x, text) for x in node.elts)
    raise SpecError(f"in schedule spec {text!r}: {ast.unparse(node)!r} is not allowed; arguments must be numbers, "
                    f"strings, booleans, None, lists or tuples, or schedule calls (lambdas cannot be given in a "
                    f"spec). Known schedules: {_names()}.")
