"""Cyclical learning rates as drop-in Keras 3 optimizers.

```python
from clr_optimizers import Adam

model.compile(optimizer=Adam(lr=0.01, clr={"max_lr": 0.06, "step_size": 2000}))
```
"""

from importlib.metadata import PackageNotFoundError, version

from clr_optimizers import schedules
from clr_optimizers._factory import cyclical
from clr_optimizers._groups import spread
from clr_optimizers._monitor import LearningRateMonitor
from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._plots import plot_schedule
from clr_optimizers._range_test import RangeTestResult, find_lr
from clr_optimizers._restart import RestartCycle
from clr_optimizers.optimizers import (
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    Nadam,
    RMSprop,
    get,
)

try:
    __version__ = version("clr-optimizers")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "Adamax",
    "CyclicalOptimizer",
    "LearningRateMonitor",
    "Nadam",
    "RMSprop",
    "RangeTestResult",
    "RestartCycle",
    "__version__",
    "cyclical",
    "find_lr",
    "get",
    "plot_schedule",
    "schedules",
    "spread",
]
