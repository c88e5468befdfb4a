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
