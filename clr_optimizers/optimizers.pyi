"""Type information for the seven classes that `cyclical()` makes at run time:
their arguments are those of the Keras class of the same name, plus `clr`,
`lr` and `decay` (tests/test_typing.py keeps this file and the classes in
step)."""

from typing import Any, TypeAlias

import keras

from clr_optimizers._optimizer import CyclicalOptimizer

Rate: TypeAlias = float | keras.optimizers.schedules.LearningRateSchedule

class SGD(CyclicalOptimizer, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class RMSprop(CyclicalOptimizer, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-07,
        centered: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class Adagrad(CyclicalOptimizer, keras.optimizers.Adagrad):
    """`keras.optimizers.Adagrad` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-07,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class Adadelta(CyclicalOptimizer, keras.optimizers.Adadelta):
    """`keras.optimizers.Adadelta` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-07,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class Adam(CyclicalOptimizer, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-07,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class Adamax(CyclicalOptimizer, keras.optimizers.Adamax):
    """`keras.optimizers.Adamax` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-07,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

class Nadam(CyclicalOptimizer, keras.optimizers.Nadam):
    """`keras.optimizers.Nadam` with a cyclical learning rate."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-07,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        *,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
    ) -> None: ...

OPTIMIZERS: tuple[type[CyclicalOptimizer], ...]
