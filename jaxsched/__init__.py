"""jaxsched: PyTorch's learning-rate schedulers as pure, jittable JAX functions of the step.

``jaxsched.<TorchName>(...)`` takes torch's arguments with the optimizer replaced by its initial LR;
``s(step)`` is the LR torch holds after ``step`` calls of ``scheduler.step()``, and ``s`` is an optax
schedule as it stands. Metric-driven and running schedules are :class:`StatefulSchedule` values with optax's
stateful-schedule protocol (``init``, ``update(state, value=...)``, ``__call__(state)``).
"""

from typing import TYPE_CHECKING

from . import keras as keras
from . import optim as optim
from . import timm as timm
from . import transformers as transformers
from ._adapters import LinearWarmup as LinearWarmup
from ._adapters import Offset as Offset
from ._adapters import PerEpoch as PerEpoch
from ._adapters import Running as Running
from ._adapters import RunningState as RunningState
from ._base import Affine as Affine
from ._base import MultiplicativeSchedule as MultiplicativeSchedule
from ._base import Schedule as Schedule
from ._base import StatefulSchedule as StatefulSchedule
from ._compose import ChainedScheduler as ChainedScheduler
from ._compose import SequentialLR as SequentialLR
from ._cyclic import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from ._cyclic import CyclicLR as CyclicLR
from ._cyclic import OneCycleLR as OneCycleLR
from ._frameworks import from_keras as from_keras
from ._frameworks import from_timm as from_timm
from ._lr_find import LRFindResult as LRFindResult
from ._lr_find import lr_find as lr_find
from ._plateau import PlateauState as PlateauState
from ._plateau import ReduceLROnPlateau as ReduceLROnPlateau
from ._schedules import ConstantLR as ConstantLR
from ._schedules import CosineAnnealingLR as CosineAnnealingLR
from ._schedules import ExponentialLR as ExponentialLR
from ._schedules import LambdaLR as LambdaLR
from ._schedules import LinearLR as LinearLR
from ._schedules import MultiplicativeLR as MultiplicativeLR
from ._schedules import MultiStepLR as MultiStepLR
from ._schedules import PolynomialLR as PolynomialLR
from ._schedules import StepLR as StepLR
from ._spec import SpecError as SpecError
from ._spec import parse_spec as parse_spec
from ._swa import SWALR as SWALR
from ._torch import from_torch as from_torch
from ._torch_releases import TorchReleaseError as TorchReleaseError
from ._value import CATALOGUE as CATALOGUE
from ._value import REGISTRY as REGISTRY
from ._value import Value as Value
from ._value import from_config as from_config

#: Submodules that need an extra (flax, orbax, matplotlib): imported on first access as ``jaxsched.<name>``,
#: so that ``import jaxsched`` stays light; a missing extra is named in the error.
_LAZY_SUBMODULES = ("checkpoint", "flax", "plot")

if TYPE_CHECKING:  # type checkers see the attributes the module __getattr__ gives
    from . import checkpoint as checkpoint
    from . import flax as flax
    from . import plot as plot


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")  # sets the attribute: called once per name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


#: The package version: the one place it is written (pyproject.toml reads it from here).
__version__ = "0.1.0"

#: The step-schedule classes that mirror a torch scheduler, by torch's class name (ReduceLROnPlateau, which is
#: metric-driven, is in CATALOGUE but not here).
SCHEDULES = {path.rsplit(".", 1)[1]: cls for path, cls in CATALOGUE.items()
             if path.startswith("torch.") and issubclass(cls, Schedule)}

__all__ = [
    "CATALOGUE",
    "REGISTRY",
    "SCHEDULES",
    "Affine",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRFindResult",
    "LambdaLR",
    "LinearLR",
    "LinearWarmup",
    "MultiStepLR",
    "MultiplicativeLR",
    "MultiplicativeSchedule",
    "Offset",
    "OneCycleLR",
    "PerEpoch",
    "PlateauState",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Running",
    "RunningState",
    "SWALR",
    "Schedule",
    "SequentialLR",
    "SpecError",
    "StatefulSchedule",
    "StepLR",
    "TorchReleaseError",
    "Value",
    "from_config",
    "from_keras",
    "from_timm",
    "from_torch",
    "keras",
    "lr_find",
    "optim",
    "parse_spec",
    "timm",
    "transformers",
]
