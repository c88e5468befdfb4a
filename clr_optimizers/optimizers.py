"""The seven Keras optimizers with a cyclical learning rate.

Each class is the Keras optimizer of the same name with the `CyclicalOptimizer`
mixin in front: same arguments, same defaults, same update rule.
"""

import keras

from clr_optimizers._optimizer import CyclicalOptimizer, registered

_CLR_ARGS = """
    Args:
        clr: `None` (the stock optimizer) or a dict describing the cycle:
            `max_lr` (required; the top of the cycle, at least
            `learning_rate`), `step_size` (required; updates per half cycle),
            `mode` (`"triangular"`, `"triangular2"`, `"exp_range"` or
            `"modified_triangular2"`; defaults to `"triangular"`), `gamma`
            (for `"exp_range"`, in (0, 1]; defaults to `1.0`),
            `restart_every` (cycles after which the amplitude scale starts
            over; defaults to `3` for `"modified_triangular2"`, else `None`),
            `scale_fn` (the registered name of a custom scale function,
            instead of `mode`) and `scale_mode` (`"cycle"` or `"iterations"`:
            what `scale_fn` receives; defaults to `"cycle"`).
            `learning_rate` is the bottom of the cycle. Defaults to `None`.
        lr: The old spelling of `learning_rate`. Defaults to `None`.
        decay: Time-based decay applied before the cycle:
            `learning_rate / (1 + decay * n)` after `n` updates, which lowers
            the floor of the cycle and never its peak. Defaults to `None`.
        *args, **kwargs: Every argument of `keras.optimizers.{name}`, with the
            same defaults. Rates may be any plain number.
"""


def _doc(name: str) -> str:
    return (
        f"`keras.optimizers.{name}` with a cyclical learning rate.\n"
        + _CLR_ARGS.format(name=name)
        + f"\n    Example:\n\n    ```python\n    opt = {name}(lr=0.01, "
        'clr={"max_lr": 0.06, "step_size": 2000})\n    ```\n'
    )


@registered
class SGD(CyclicalOptimizer, keras.optimizers.SGD):
    __doc__ = _doc("SGD")


@registered
class RMSprop(CyclicalOptimizer, keras.optimizers.RMSprop):
    __doc__ = _doc("RMSprop")


@registered
class Adagrad(CyclicalOptimizer, keras.optimizers.Adagrad):
    __doc__ = _doc("Adagrad")


@registered
class Adadelta(CyclicalOptimizer, keras.optimizers.Adadelta):
    __doc__ = _doc("Adadelta")


@registered
class Adam(CyclicalOptimizer, keras.optimizers.Adam):
    __doc__ = _doc("Adam")


@registered
class Adamax(CyclicalOptimizer, keras.optimizers.Adamax):
    __doc__ = _doc("Adamax")


@registered
class Nadam(CyclicalOptimizer, keras.optimizers.Nadam):
    __doc__ = _doc("Nadam")


OPTIMIZERS = (SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam)
