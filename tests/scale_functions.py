"""Custom scale functions registered for the tests (importable by subprocesses)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="clr_tests")
def inverse_cycle(x):
    """1 / x: for scale_mode="cycle"."""
    return 1.0 / x


@keras.saving.register_keras_serializable(package="clr_tests")
def slow_decay(x):
    """0.99 ** x: for scale_mode="iterations"."""
    return ops.power(0.99, x)


def unregistered(x):
    return x


@keras.saving.register_keras_serializable(package="clr_tests")
def addons_decay(x):
    """1 / 5**(x / 10000): the custom scale of TensorFlow Addons' tests."""
    return 1.0 / ops.power(5.0, x * 0.0001)


@keras.saving.register_keras_serializable(package="clr_tests")
class Power:
    """`base**x`: a scale function with an argument, saved by its config."""

    def __init__(self, base):
        self.base = base

    def __call__(self, x):
        return ops.power(self.base, x)

    def get_config(self):
        return {"base": self.base}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Unregistered:
    def __call__(self, x):
        return 1.0 / x
