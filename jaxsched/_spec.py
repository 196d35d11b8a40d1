"""Parse a schedule written as its constructor call, without ``eval``.

``parse_spec("OneCycleLR(max_lr=0.1, total_steps=100)")`` returns the schedule. Arguments may be numbers,
strings, booleans, None, lists and tuples of those, and nested schedule calls (for SequentialLR and
ChainedScheduler). Anything else (names, lambdas, attribute access, arithmetic beyond a unary minus, ``*args``,
``**kwargs``) is refused with a :class:`SpecError` that names the offending part. The text is only parsed with
:func:`ast.parse`: nothing in it is ever evaluated; the only code that runs is the constructor of each named
schedule class, with the literal arguments written in the spec.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import textwrap
from typing import Any

from ._base import REGISTRY

#: Longest spec accepted, in characters (a constructor call is a line; this bounds the parser's work).
MAX_SPEC_CHARS = 10_000
#: Deepest nesting of calls, lists and tuples accepted.
MAX_DEPTH = 32
_ECHO_CHARS = 200  # an error message quotes at most this many characters of the spec
_EXAMPLE = "'StepLR(0.1, step_size=30)'"


class SpecError(ValueError):
    """A schedule spec that cannot be parsed or constructed.

    ``unknown_name`` is True when the message ends with the list of known schedules (a name not registered).
    """

    unknown_name: bool = False


def known_names() -> list[str]:
    """The public schedule names a spec may call (registered, not private, not abstract), sorted."""
    return sorted(k for k, cls in REGISTRY.items() if not k.startswith("_") and not inspect.isabstract(cls))


#: The groups of the name list in an "unknown schedule" error, by the start of the class's ``mirrors`` path.
_GROUPS = (("torch", "torch."), ("transformers", "transformers."), ("keras", "keras."), ("timm", "timm."),
           ("jaxsched", ""))


def grouped_names(width: int = 100) -> str:
    """The known names for a terminal: one indented, wrapped group per framework mirrored, each line starting
    with a newline (the ``jaxsched plot`` error lists them so; 43 names on one line are not read)."""
    groups: dict[str, list[str]] = {label: [] for label, _ in _GROUPS}
    for name in known_names():
        mirrors = REGISTRY[name]._mirrors or ""
        label = next(lb for lb, prefix in _GROUPS if mirrors.startswith(prefix))
        groups[label].append(name)
    return "".join("\n" + textwrap.fill(", ".join(names), width, initial_indent=f"  {label}: ",
                                         subsequent_indent="    ", break_on_hyphens=False)
                   for label, names in groups.items() if names)


def _echo(text: str, limit: int = _ECHO_CHARS) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (a 10 MB spec is not echoed whole)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _suggest(name: str, choices: list[str]) -> str:
    """`` Did you mean 'StepLR'?`` for the closest of ``choices`` (case-insensitive first), or ``''``."""
    lower = {c.lower(): c for c in choices}
    if name.lower() in lower:
        return f" Did you mean {lower[name.lower()]!r}?"
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return f" Did you mean {lower[close[0]]!r}?" if close else ""


def _unknown(name: str, where: str) -> SpecError:
    err = SpecError(f"{where}unknown schedule {_echo(name, 60)}.{_suggest(name, known_names())} "
                    f"Known schedules: {', '.join(known_names())}.")
    err.unknown_name = True
    return err


def parse_spec(text: str) -> Any:
    """The schedule that the constructor call ``text`` describes (parsed, never evaluated).

    Raises :class:`SpecError` (a ``ValueError``) naming the offending part for anything that is not one
    schedule call with literal arguments, and for a schedule whose constructor refuses the arguments.

    >>> from jaxsched import StepLR
    >>> parse_spec("StepLR(0.1, step_size=30)") == StepLR(0.1, step_size=30)
    True
    """
    if not isinstance(text, str):
        raise SpecError(f"a schedule spec must be a string such as {_EXAMPLE}, got {type(text).__name__} "
                        f"{_echo(repr(text), 60)}.")
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"schedule spec {_echo(text, 60)} is too long: a spec is at most {MAX_SPEC_CHARS:,} "
                        f"characters, got {len(text):,}.")
    src = text.strip()
    try:
        src.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: a byte the terminal could not decode
        bad = text.strip()[err.start]
        raise SpecError(f"schedule spec {_echo(text)} holds the character {bad!r} at position {err.start}, which "
                        f"is not valid UTF-8 text (a byte the terminal could not decode?); write the spec in "
                        f"plain text such as {_EXAMPLE}.") from None
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        raise SpecError(f"schedule spec {_echo(text)} is not a constructor call: {err.msg}. "
                        f"Write e.g. {_EXAMPLE}.") from None
    except (RecursionError, MemoryError, ValueError):  # e.g. 100,000 unary minuses: the parser gives up
        raise SpecError(f"schedule spec {_echo(text)} is nested too deeply to parse; a spec is one constructor "
                        f"call such as {_EXAMPLE}.") from None
    body = tree.body
    if isinstance(body, ast.Name):
        name = body.id
        if name in known_names():
            raise SpecError(f"schedule spec {_echo(text)} names a schedule without calling it: write {name}(...) "
                            f"with its arguments, e.g. {_EXAMPLE}.")
        raise _unknown(name, f"in schedule spec {_echo(text)}: ")
    if not isinstance(body, ast.Call):
        raise SpecError(f"schedule spec {_echo(text)} is not a constructor call: it is {_kind(body)}. "
                        f"Write a schedule call such as {_EXAMPLE}.")
    try:
        return _Parser(text, src).node(body, 0)
    except RecursionError:
        raise SpecError(f"schedule spec {_echo(text)} is nested too deeply (at most {MAX_DEPTH} levels of calls, "
                        f"lists and tuples).") from None


def _kind(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"a bare {type(node.value).__name__} literal"
    if isinstance(node, (ast.List, ast.Tuple)):
        return f"a bare {type(node).__name__.lower()}"
    return f"a {type(node).__name__} expression"


class _Parser:
    def __init__(self, text: str, src: str):
        self.text, self.src = text, src
        self.where = f"in schedule spec {_echo(text)}: "

    def part(self, node: ast.AST) -> str:
        """The source text of ``node``, bounded (``ast.get_source_segment`` does not recurse)."""
        seg = ast.get_source_segment(self.src, node) or type(node).__name__
        return _echo(seg, 80)

    def node(self, node: ast.AST, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SpecError(f"{self.where}nested more than {MAX_DEPTH} levels deep (calls, lists and tuples); "
                            f"a spec is one constructor call such as {_EXAMPLE}.")
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)) \
                and not isinstance(node.operand.value, bool):
            v = node.operand.value
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.List):
            return [self.node(x, depth + 1) for x in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.node(x, depth + 1) for x in node.elts)
        if isinstance(node, ast.Name):
            hint = f" (write {node.id}(...) with its arguments)" if node.id in known_names() else ""
            raise SpecError(f"{self.where}the name {node.id!r} is not allowed{hint}; arguments must be numbers, "
                            f"strings, booleans, None, lists or tuples, or schedule calls.")
        raise SpecError(f"{self.where}{self.part(node)} is not allowed; arguments must be numbers, strings, booleans, "
                        f"None, lists or tuples, or schedule calls (lambdas and expressions cannot be given in a "
                        f"spec).")

    def call(self, node: ast.Call, depth: int) -> Any:
        name = _call_name(node.func)
        if name is None:
            raise SpecError(f"{self.where}{self.part(node.func)} is not a schedule name; write e.g. {_EXAMPLE}.")
        if name not in known_names():
            raise _unknown(name, self.where)
        args = [self.node(a, depth + 1) for a in node.args]
        kwargs: dict = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise SpecError(f"{self.where}'**' arguments are not supported; write each argument as name=value.")
            if kw.arg in kwargs:  # ast.parse accepts it; Python's compiler refuses it
                raise SpecError(f"{self.where}keyword argument repeated: {name}(..., {kw.arg}=...) is given "
                                f"{kw.arg} more than once (Python refuses this too).")
            kwargs[kw.arg] = self.node(kw.value, depth + 1)
        cls = REGISTRY[name]
        try:
            return cls(*args, **kwargs)
        except TypeError as err:
            raise SpecError(f"{self.where}{err}{_keyword_hint(cls, kwargs)}") from None
        except (ValueError, OverflowError) as err:
            raise SpecError(f"{self.where}{err}") from None


def _call_name(func: ast.AST) -> str | None:
    """The registry name a call is written with: ``StepLR``, a framework catalogue's dotted name
    (``keras.CosineDecay``), or the bare class name a repr shows (``CosineDecay``) when exactly one registered
    class has it."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    if not isinstance(func, ast.Name):
        return None
    if func.id in REGISTRY:
        return func.id
    matches = [k for k in REGISTRY if k.rsplit(".", 1)[-1] == func.id and not k.startswith("_")]
    return matches[0] if len(matches) == 1 else func.id


def _keyword_hint(klass: Any, kwargs: dict) -> str:
    """`` Did you mean 'step_size'?`` for the first keyword that ``klass`` does not take, or ``''``."""
    try:
        params = [p for p in inspect.signature(klass).parameters if not p.startswith("_")]
    except (TypeError, ValueError):
        return ""
    for k in kwargs:
        if k not in params:
            hint = _suggest(k, params)
            if hint:
                return f".{hint}"
    return ""
