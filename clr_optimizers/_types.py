"""Type aliases. Keras ships no type information, so to a type checker its
tensors, variables and objects are `Any`; these names say which is meant."""

from typing import Any, TypeAlias

#: A backend tensor (or a NumPy array or Python number that becomes one).
Tensor: TypeAlias = Any
#: A Keras optimizer.
Optimizer: TypeAlias = Any
