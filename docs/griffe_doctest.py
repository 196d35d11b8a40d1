"""A griffe extension for the API pages: doctests become code blocks, and reST roles read as code.

jaxsched's docstrings put their doctests after the text, without a Google ``Examples:`` heading; unfenced,
Markdown would read an output such as ``[0.1, 0.05]`` as a link. Each run of lines from a ``>>>`` line to the
next blank line is wrapped in a ``pycon`` fence, at the indentation it has. Outside fences, Sphinx roles
(``:class:`X```) become code spans and a paragraph ending in ``::`` (reST's literal-block marker) ends in ``:``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc):`~?([^`]+)`")


def fence_doctests(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    i, in_fence = 0, False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence or not line.lstrip().startswith(">>>"):
            if not in_fence and not line.lstrip().startswith("```"):
                line = ROLE.sub(r"`\1`", line)
                if line.endswith("::") and not line.strip() == "::":
                    line = line[:-1]
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
