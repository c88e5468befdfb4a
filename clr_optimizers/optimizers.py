"""The seven Keras optimizers with a cyclical learning rate, and `get`.

Each class is `cyclical(keras.optimizers.X)`: the Keras optimizer of the same
name with the `CyclicalOptimizer` mixin in front (same arguments, same
defaults, same update rule).
"""

from collections.abc import Mapping
from typing import Any

import keras

from clr_optimizers._factory import cyclical

SGD = cyclical(keras.optimizers.SGD)
RMSprop = cyclical(keras.optimizers.RMSprop)
Adagrad = cyclical(keras.optimizers.Adagrad)
Adadelta = cyclical(keras.optimizers.Adadelta)
Adam = cyclical(keras.optimizers.Adam)
Adamax = cyclical(keras.optimizers.Adamax)
Nadam = cyclical(keras.optimizers.Nadam)

OPTIMIZERS = (SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam)


def get(identifier: str | Mapping[str, Any], **kwargs: Any) -> Any:
    """The CLR optimizer for an optimizer's name, as `compile` takes it.

    Code that compiles with `optimizer="adam"` names a Keras optimizer by
    any name `keras.optimizers.get` accepts (`"sgd"`, `"rmsprop"`, `"adam"`,
    `"adamw"`, `"ftrl"`, ...) or by its serialized config; this returns the
    CLR optimizer of that class, one of the seven or made by `cyclical()`,
    with the config's arguments and `kwargs` (such as `clr` and
    `learning_rate`) on top.

    Example:

    ```python
    opt = get("adam", learning_rate=1e-3, clr={"max_lr": 6e-3, "step_size": 100})
    assert type(opt) is Adam
    ftrl = get("ftrl", learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 100})
    assert isinstance(ftrl, keras.optimizers.Ftrl)
    ```
    """
    if not isinstance(identifier, (str, Mapping)):
        raise TypeError(
            "`get` takes an optimizer's name (such as 'adam') or its "
            f"serialized config. Received: {identifier!r}."
        )
    stock = keras.optimizers.get(identifier)
    name = type(stock).__name__  # on PyTorch, Keras's fused variant's
    config = {} if isinstance(identifier, str) else stock.get_config()
    config.pop("name", None)
    # `cyclical` returns the class it made before: `SGD` for "sgd", and so on.
    ours = cyclical(getattr(keras.optimizers, name, type(stock)))
    return ours(**{**config, **kwargs})
