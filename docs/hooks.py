"""MkDocs hooks: the pages generated at build time.

* ``schedules/<framework>/<Name>.md`` for every class of ``jaxsched.CATALOGUE`` (every class that mirrors a
  torch, transformers or Keras object), so a class added later gets its page by itself: the mirrored object,
  the equivalents from ``docs/schedule_notes.py``, the docstring (mkdocstrings) and a plot drawn now with
  matplotlib (Agg) from the entry's example, or from the first constructor call of the docstring example.
* ``api.md``: the API reference, one mkdocstrings block per public name of ``jaxsched`` and its public
  submodules.
* ``parity.md``: the parity report, made now by ``python -m parity report`` (all cases; only those matching
  ``$JAXSCHED_DOCS_PARITY_ONLY`` when it is set, as the site test does to stay fast).
* ``benchmarks.md``: ``benchmarks/results/results.md`` and the CIFAR-10 summary, as committed.

The navigation lists the generated pages, so they need no entry in ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib
import inspect
import io
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # the checkout's jaxsched, parity and benchmarks
sys.path.insert(0, str(ROOT / "docs"))

import schedule_notes  # noqa: E402  (docs/schedule_notes.py)

FRAMEWORKS = {"torch": "torch", "transformers": "Hugging Face transformers", "keras": "Keras 3", "timm": "timm"}


# ----------------------------------------------------------------------------------------------------------
# what to document


def _jaxsched():
    import jaxsched

    for info in pkgutil.iter_modules(jaxsched.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"jaxsched.{info.name}")   # submodules register their classes on import
    return jaxsched


def public_modules() -> list[str]:
    jaxsched = _jaxsched()
    return ["jaxsched"] + [f"jaxsched.{i.name}" for i in pkgutil.iter_modules(jaxsched.__path__)
                           if not i.name.startswith("_")]


def public_path(cls) -> str:
    """Where users import ``cls`` from: ``jaxsched.StepLR``, ``jaxsched.transformers.WSDSchedule``, ..."""
    for mod in public_modules():
        if getattr(sys.modules[mod], cls.__name__, None) is cls:
            return f"{mod}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def catalogue() -> list[tuple[str, str, type]]:
    """``(framework, mirrored path, class)`` for every catalogued class, in catalogue order."""
    jaxsched = _jaxsched()
    cat = getattr(jaxsched, "CATALOGUE", None)
    if cat is None:   # before the catalogue existed: the torch schedules
        cat = {f"torch.optim.lr_scheduler.{n}": c for n, c in jaxsched.SCHEDULES.items()}
    return [(path.split(".")[0], path, cls) for path, cls in cat.items()]


def page_of(framework: str, cls) -> str:
    return f"schedules/{framework}/{cls.__name__}.md"


# ----------------------------------------------------------------------------------------------------------
# the example each page plots


def _docstring_example(cls) -> str | None:
    """The first ``Name(...)`` call (balanced parentheses) on a ``>>>`` line of the class docstring."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(">>>"):
            continue
        text = "\n".join(x.strip().lstrip(">.").strip() for x in lines[i:i + 6])
        m = re.search(r"(?<![\w.])(?:jaxsched\.(?:\w+\.)?)?(" + re.escape(cls.__name__) + r"\()", text)
        if not m:
            continue
        depth, j = 0, m.start(1)
        for j in range(m.start(1), len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0 and text[j] == ")":
                return text[m.start(1): j + 1].replace("\n", " ")
    return None


def example(cls) -> tuple[object | None, str]:
    """``(schedule, its constructor call)`` to plot, or ``(None, reason)``."""
    import jax.numpy as jnp

    import jaxsched

    note = schedule_notes.NOTES.get(cls.__name__, {})
    spec = note.get("example") or _docstring_example(cls)
    if not spec:
        return None, f"no example: add one for {cls.__name__} in docs/schedule_notes.py"
    namespace = {"jnp": jnp, "jaxsched": jaxsched, **{n: getattr(jaxsched, n) for n in jaxsched.__all__}}
    mod = sys.modules[public_path(cls).rsplit(".", 1)[0]]
    namespace.update({n: getattr(mod, n) for n in getattr(mod, "__all__", [])})
    try:
        return eval(spec, namespace), spec   # noqa: S307 - the docs' own example strings, not user input
    except Exception as err:  # noqa: BLE001 - reported on the page and by the site test
        return None, f"the example {spec!r} did not build: {type(err).__name__}: {err}"


def trajectory(s, steps: int):
    """LR (and momentum when cycled) at steps ``0..steps-1``; metric-driven schedules are fed PLOT_METRIC."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    if hasattr(s, "init") and hasattr(s, "update"):
        state, lrs = s.init(), []
        for k in range(steps):
            lrs.append(np.asarray(s(state)))
            state = s.update(state, value=schedule_notes.PLOT_METRIC[k % len(schedule_notes.PLOT_METRIC)])
        return np.array(lrs), None
    ks = jnp.arange(steps)
    lr = np.asarray(jax.jit(jax.vmap(s))(ks))
    mom = None
    if getattr(s, "cycle_momentum", False) and callable(getattr(s, "momentum", None)):
        mom = np.asarray(jax.jit(jax.vmap(s.momentum))(ks))
    return lr, mom


def plot_png(lr, mom, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(lr)
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=90)
    ax.plot(range(steps), lr, drawstyle="steps-post" if steps <= 40 else "default")
    ax.set_xlabel("step (torch: scheduler.step() calls)")
    ax.set_ylabel("learning rate")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if mom is not None:
        ax2 = ax.twinx()
        ax2.plot(range(steps), mom, color="tab:orange", alpha=0.7)
        ax2.set_ylabel("momentum", color="tab:orange")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# page text


def schedule_page(framework: str, path: str, cls) -> tuple[str, bytes | None]:
    note = schedule_notes.NOTES.get(cls.__name__, {})
    s, spec = example(cls)
    png = None
    lines = [f"# {cls.__name__}", "", f"`{public_path(cls)}` mirrors {FRAMEWORKS.get(framework, framework)}'s "
             f"`{path}`.", ""]
    if s is not None:
        steps = int(note.get("steps", 60))
        png = plot_png(*trajectory(s, steps), spec if len(spec) < 110 else spec[:107] + "...")
        lines += [f"![{cls.__name__}: {spec}]({cls.__name__}.png)", "",
                  f"The plot (drawn when this site was built) is `{spec}` over {steps} steps.", ""]
    else:
        lines += ["!!! warning \"No plot\"", f"    {spec}", ""]
    rows = [(k, note[k]) for k in ("torch", "optax", "transformers", "keras") if k in note]
    if rows:
        lines += ["## Equivalents", "", "| library | equivalent |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines += [""]
    if "differs" in note:
        lines += ["## Where they differ", "", note["differs"], ""]
    lines += ["## Reference", "", f"::: {public_path(cls)}", "    options:", "      show_root_heading: false",
              "      heading_level: 3", ""]
    return "\n".join(lines), png


def schedules_index(entries) -> str:
    lines = ["# Schedules", "",
             "One page per class that mirrors another framework's schedule, generated when the site is built from "
             "`jaxsched.CATALOGUE`: its formula and arguments (the docstring), its equivalents and where they "
             "differ, and its plot.", ""]
    by_fw: dict[str, list] = {}
    for fw, path, cls in entries:
        by_fw.setdefault(fw, []).append((path, cls))
    for fw, items in by_fw.items():
        lines += [f"## {FRAMEWORKS.get(fw, fw)}", "", "| jaxsched | mirrors |", "|---|---|"]
        lines += [f"| [{cls.__name__}]({fw}/{cls.__name__}.md) | `{path}` |" for path, cls in items]
        lines += [""]
    return "\n".join(lines)


def api_page() -> str:
    catalogued = {id(cls) for _, _, cls in catalogue()}
    lines = ["# API reference", "",
             "Generated from the docstrings when the site is built. The schedule classes have their own pages "
             "(see [Schedules](schedules/index.md)); everything else public is here.", ""]
    for mod in public_modules():
        module = sys.modules[mod]
        names = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
        objs = [(n, getattr(module, n, None)) for n in names]
        objs = [(n, o) for n, o in objs if (inspect.isclass(o) or inspect.isfunction(o)) and id(o) not in catalogued]
        if mod != "jaxsched":
            lines += [f"## `{mod}`", "", f"::: {mod}", "    options:", "      members: false",
                      "      show_root_heading: false", ""]
        elif objs:
            lines += ["## `jaxsched`", ""]
        for n, _ in objs:
            lines += [f"::: {mod}.{n}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def parity_page(workdir: Path) -> tuple[str, dict[str, bytes]]:
    only = os.environ.get("JAXSCHED_DOCS_PARITY_ONLY")
    cmd = [sys.executable, "-m", "parity", "report", "--out", str(workdir)] + (["--only", only] if only else [])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"docs: {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    text = (workdir / "README.md").read_text(encoding="utf-8")
    text = re.sub(r"\]\((?!plots/|#|https?:)[^)]*\)", "]", text)   # links to the HTML twin: not on the site
    text = text.replace("](plots/", "](parity/plots/")
    head = ["# Parity report", ""]
    if only:
        head += ["!!! note \"Partial build\"",
                 f"    This build ran only the cases matching `{only}` (`JAXSCHED_DOCS_PARITY_ONLY`); the full site "
                 "runs the whole catalogue.", ""]
    import torch

    head += [f"Generated when this site was built, by `python -m parity report`: live torch "
             f"{str(torch.__version__).split('+')[0]} against jaxsched under `jit` in float32 and float64, and "
             "optax's closest construction. For the other torch releases, see [torch releases](torch-releases.md).",
             ""]
    text = re.sub(r"^# .*\n", "", text, count=1)
    images = {f"parity/plots/{p.name}": p.read_bytes() for p in (workdir / "plots").glob("*.png")}
    return "\n".join(head) + text, images


def benchmarks_page() -> tuple[str, dict[str, bytes]]:
    res = ROOT / "benchmarks" / "results"
    text = (res / "results.md").read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text, count=1)
    parts = ["# Benchmarks", "", "The committed results of `python -m benchmarks.schedules` "
             "(`benchmarks/results/results.md`) and of the CIFAR-10 training benchmark.", "",
             "## The cost of a schedule", "", text.replace("\n## ", "\n### ")]
    images: dict[str, bytes] = {}
    summary = res / "cifar10-cpu" / "summary.md"
    if summary.exists():
        body = summary.read_text(encoding="utf-8")
        body = re.sub(r"^# .*\n", "", body, count=1).replace("\n## ", "\n### ")
        body = re.sub(r"\]\((?!https?:)([^)]*\.png)\)", lambda m: f"](benchmarks/{Path(m.group(1)).name})", body)
        parts += ["", "## CIFAR-10, `cpu` preset", "", body]
        for png in (res / "cifar10-cpu").glob("*.png"):
            images[f"benchmarks/{png.name}"] = png.read_bytes()
    return "\n".join(parts), images


# ----------------------------------------------------------------------------------------------------------
# the hooks


_GENERATED: dict[str, str | bytes] = {}


def on_config(config, **kwargs):
    _GENERATED.clear()
    entries = catalogue()
    _GENERATED["schedules/index.md"] = schedules_index(entries)
    sched_nav: list = [{"Overview": "schedules/index.md"}]
    by_fw: dict[str, list] = {}
    for fw, path, cls in entries:
        text, png = schedule_page(fw, path, cls)
        _GENERATED[page_of(fw, cls)] = text
        if png is not None:
            _GENERATED[f"schedules/{fw}/{cls.__name__}.png"] = png
        by_fw.setdefault(FRAMEWORKS.get(fw, fw), []).append({cls.__name__: page_of(fw, cls)})
    sched_nav += [{fw: items} for fw, items in by_fw.items()]
    _GENERATED["api.md"] = api_page()
    with tempfile.TemporaryDirectory() as tmp:
        text, images = parity_page(Path(tmp) / "report")
    _GENERATED["parity.md"] = text
    _GENERATED.update(images)
    text, images = benchmarks_page()
    _GENERATED["benchmarks.md"] = text
    _GENERATED.update(images)
    nav = config["nav"]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and "Schedules" in item:
            nav[i] = {"Schedules": sched_nav}
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for path, content in _GENERATED.items():
        files.append(File.generated(config, path, content=content))
    return files
