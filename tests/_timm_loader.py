"""Load ``timm.scheduler`` (timm 1.0.x, unchanged) without running timm's package ``__init__``.

``import timm`` imports torchvision, whose wheel from the package index does not load beside the CPU build of
torch; timm's scheduler modules themselves import only torch. So the ``timm`` package is entered in
``sys.modules`` as an empty namespace whose ``__path__`` is the installed package's folder, and
``timm.scheduler`` is then imported normally from it: timm's own files, byte for byte.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def load_timm_scheduler():
    """``timm.scheduler`` from the installed timm, or ``None`` when timm is not installed."""
    loaded = sys.modules.get("timm.scheduler")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("timm") if "timm" not in sys.modules else None
    if "timm" not in sys.modules:
        if spec is None or not spec.submodule_search_locations:
            return None
        stub = types.ModuleType("timm")
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__spec__ = spec
        stub.__file__ = spec.origin
        sys.modules["timm"] = stub
    return importlib.import_module("timm.scheduler")


def timm_version() -> str | None:
    """The installed timm's version (read from its metadata: timm's ``__init__`` is not run)."""
    try:
        from importlib.metadata import version

        return version("timm")
    except Exception:
        return None
