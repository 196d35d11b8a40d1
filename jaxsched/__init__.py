"""jaxsched: PyTorch's learning-rate schedulers as pure, jittable JAX functions of the step.

``jaxsched.<TorchName>(...)`` takes torch's arguments with the optimizer replaced by its initial LR;
``s(step)`` is the LR torch holds after ``step`` calls of ``scheduler.step()``, and ``s`` is an optax
schedule as it stands.
"""

from ._base import REGISTRY as _REGISTRY
from ._base import Schedule as Schedule
from ._base import from_config as from_config
from ._compose import ChainedScheduler as ChainedScheduler
from ._compose import Running as Running
from ._compose import RunningState as RunningState
from ._compose import SequentialLR as SequentialLR
from ._cyclic import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from ._cyclic import CyclicLR as CyclicLR
from ._cyclic import OneCycleLR as OneCycleLR
from ._cyclic import SWALR as SWALR
from ._epochs import Offset as Offset
from ._epochs import PerEpoch as PerEpoch
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
from ._torch import from_torch as from_torch
from . import optim as optim  # noqa: E402 - optax wiring helpers, jaxsched.optim.*

__version__ = "0.1.0"

#: The schedule classes that mirror a torch scheduler, by torch's name.
SCHEDULES = {name: cls for name, cls in _REGISTRY.items()
             if not name.startswith("_") and isinstance(cls, type) and issubclass(cls, Schedule)
             and not getattr(cls, "_wrapper", False)}

# Not torch schedulers, so outside SCHEDULES (their classes are in the registry: from_config/parse_spec).
from . import transformers as transformers  # noqa: E402 - HF transformers' catalogue, jaxsched.transformers.*
from ._lr_find import LRFindResult as LRFindResult  # noqa: E402
from ._lr_find import lr_find as lr_find  # noqa: E402
from ._warmup import LinearWarmup as LinearWarmup  # noqa: E402

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LRFindResult",
    "LinearLR",
    "LinearWarmup",
    "MultiStepLR",
    "MultiplicativeLR",
    "Offset",
    "OneCycleLR",
    "PerEpoch",
    "PlateauState",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Running",
    "RunningState",
    "SCHEDULES",
    "SWALR",
    "Schedule",
    "SequentialLR",
    "SpecError",
    "StepLR",
    "from_config",
    "from_torch",
    "lr_find",
    "optim",
    "parse_spec",
    "transformers",
]
