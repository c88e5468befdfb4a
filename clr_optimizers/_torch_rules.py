"""Keras's fused PyTorch update rules, restated to take tensors where Keras
takes Python numbers, so that an update reads nothing back to the host.

On PyTorch, Keras runs its stock optimizers with fused multi-tensor rules
that pass some factors as Python-number arguments, such as
`torch._foreach_add_(variables, grads, alpha=-learning_rate)`. The rate is a
tensor, and so is the momentum while `clr` cycles it: PyTorch then reads the
value back to the host (`aten._local_scalar_dense`), which on a GPU waits
for every queued kernel, once per such argument and update. Keras's Nadam
also reads two values of its own with `convert_to_numpy`.

Each rule here is Keras's, statement by statement and in the same order, but
for those arguments: `_add_scaled_` applies a factor that is a tensor with
`addcmul` by the 0-dim tensor, and Nadam divides by 0-dim tensors. With the
same values the weights are Keras's, bit for bit: `addcmul(a, b, c)` rounds
`a + b * c` as `add(a, b, alpha=c)` does (both fuse the multiply-add on a CPU
with FMA), and division by a 0-dim tensor is the division by its float.
`tests/test_torch_rules.py` checks both, and the weights, on the machine that
runs it. A factor that is a Python number keeps Keras's call, and so does
any factor for float16 and bfloat16 variables, for which `add` and `addcmul`
round differently (with Keras's read on the host).

Replaced, for the stock class as for a CLR one: SGD and Adadelta (the rate,
also in Keras's own use), Adam, AdamW, Adamax and Nadam (a cycled momentum;
Nadam's reads). RMSprop and Adagrad read nothing on the host (the rate, and
RMSprop's momentum, multiply as tensors), so they keep Keras's rules, as do
Lion and every other class. `cyclical()` picks the rule of its base class,
and imports this module on the PyTorch backend only.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import keras
import torch
from keras import ops

# What PyTorch's `_foreach` functions take and return.
Tensors = list[torch.Tensor] | tuple[torch.Tensor, ...]
Rule = Callable[[Any, list[torch.Tensor], list[Any], Any], None]

# The dtypes for which `addcmul` with a 0-dim tensor computes as `add` with
# `alpha`.
_EXACT = (torch.float32, torch.float64)


def _add_scaled_(targets: list[torch.Tensor], tensors: Tensors, scale: Any) -> None:
    """`torch._foreach_add_(targets, tensors, alpha=scale)`, without reading
    `scale` on the host when it is a tensor (or a variable)."""
    if isinstance(scale, numbers.Number) or targets[0].dtype not in _EXACT:
        torch._foreach_add_(targets, tensors, alpha=scale)  # Keras's call
        return
    factor = ops.convert_to_tensor(scale).to(targets[0].dtype)
    torch._foreach_addcmul_(targets, tensors, [factor] * len(tensors))


def _average_(averages: list[torch.Tensor], values: Tensors, decay: Any) -> None:
    """`averages = decay * averages + (1 - decay) * values`, in place, as
    Keras's rules compute their moving averages (a multiplication, then an
    addition scaled by `1 - decay`)."""
    torch._foreach_mul_(averages, decay)
    _add_scaled_(averages, values, 1 - decay)


def _slots(self: Any, slots: list[Any], variables: list[Any]) -> list[torch.Tensor]:
    """The value of each variable's slot in `slots`, found as Keras finds it."""
    return [slots[self._get_variable_index(variable)].value for variable in variables]


@torch.no_grad()
def sgd(
    self: Any, grads: list[torch.Tensor], variables: list[Any], learning_rate: Any
) -> None:
    keras_variables = variables
    variables = [v.value for v in variables]
    if self.momentum != 0:
        bufs = _slots(self, self.momentums, keras_variables)
        torch._foreach_mul_(bufs, self.momentum)
        _add_scaled_(bufs, grads, -learning_rate)
        if self.nesterov:
            _add_scaled_(variables, grads, -learning_rate)
            _add_scaled_(variables, bufs, self.momentum)
        else:
            torch._foreach_add_(variables, bufs)
    else:
        _add_scaled_(variables, grads, -learning_rate)


@torch.no_grad()
def adadelta(
    self: Any, grads: list[torch.Tensor], variables: list[Any], learning_rate: Any
) -> None:
    keras_variables = variables
    variables = [v.value for v in variables]
    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    rho = self.rho
    accumulated_grads = _slots(self, self._accumulated_grads, keras_variables)
    accumulated_delta_vars = _slots(self, self._accumulated_delta_vars, keras_variables)
    _average_(accumulated_grads, torch._foreach_mul(grads, grads), rho)

    def rms(x: Tensors) -> Tensors:
        return torch._foreach_sqrt(torch._foreach_add(x, self.epsilon))

    delta_vars = torch._foreach_mul(
        torch._foreach_div(
            torch._foreach_mul(rms(accumulated_delta_vars), grads),
            rms(accumulated_grads),
        ),
        -1,
    )
    _average_(accumulated_delta_vars, torch._foreach_mul(delta_vars, delta_vars), rho)
    _add_scaled_(variables, delta_vars, lr)


@torch.no_grad()
def adam(
    self: Any, grads: list[torch.Tensor], variables: list[Any], learning_rate: Any
) -> None:
    keras_variables = variables
    variables = [v.value for v in variables]
    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(self.iterations + 1, dtype)
    beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
    beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
    alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m_list = _slots(self, self._momentums, keras_variables)
    v_list = _slots(self, self._velocities, keras_variables)

    _average_(m_list, grads, self.beta_1)

    _average_(v_list, torch._foreach_mul(grads, grads), self.beta_2)

    if self.amsgrad:
        v_hat_list = _slots(self, self._velocity_hats, keras_variables)
        torch._foreach_maximum_(v_hat_list, v_list)
        v_list = v_hat_list

    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(m_list, alpha),
            torch._foreach_add(torch._foreach_sqrt(v_list), self.epsilon),
        ),
        alpha=-1,
    )


@torch.no_grad()
def adamax(
    self: Any, grads: list[torch.Tensor], variables: list[Any], learning_rate: Any
) -> None:
    keras_variables = variables
    variables = [v.value for v in variables]
    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(self.iterations + 1, dtype)
    beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
    m_list = _slots(self, self._m, keras_variables)
    u_list = _slots(self, self._u, keras_variables)

    _average_(m_list, grads, self.beta_1)

    torch._foreach_mul_(u_list, self.beta_2)
    torch._foreach_maximum_(u_list, torch._foreach_abs(grads))

    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(m_list, lr),
            torch._foreach_mul(
                torch._foreach_add(u_list, self.epsilon), 1 - beta_1_power
            ),
        ),
        alpha=-1,
    )


@torch.no_grad()
def nadam(
    self: Any, grads: list[torch.Tensor], variables: list[Any], learning_rate: Any
) -> None:
    keras_variables = variables
    variables = [v.value for v in variables]
    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(self.iterations + 1, dtype)
    next_step = ops.cast(self.iterations + 2, dtype)
    decay = ops.cast(0.96, dtype)
    beta_1 = ops.cast(self.beta_1, dtype)
    beta_2 = ops.cast(self.beta_2, dtype)
    u_t = beta_1 * (1.0 - 0.5 * (ops.power(decay, local_step)))
    u_t_1 = beta_1 * (1.0 - 0.5 * (ops.power(decay, next_step)))
    u_product_t = self._u_product.value * u_t
    u_product_t_1 = u_product_t * u_t_1
    beta_2_power = ops.power(beta_2, local_step)

    self._u_product.assign(u_product_t)

    m_list = _slots(self, self._momentums, keras_variables)
    v_list = _slots(self, self._velocities, keras_variables)

    _average_(m_list, grads, self.beta_1)

    _average_(v_list, torch._foreach_mul(grads, grads), self.beta_2)

    # Keras divides by `1 - convert_to_numpy(...)`: the same float, on the
    # device (NumPy's `1 - x` of a float32 is float32's, as the tensor's).
    m_hat_list = torch._foreach_add(
        torch._foreach_div(torch._foreach_mul(m_list, u_t_1), 1 - u_product_t_1),
        torch._foreach_div(torch._foreach_mul(grads, 1 - u_t), 1 - u_product_t),
    )

    v_hat_list = torch._foreach_div(v_list, 1 - beta_2_power)

    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(m_hat_list, lr),
            torch._foreach_add(torch._foreach_sqrt(v_hat_list), self.epsilon),
        ),
        alpha=-1,
    )


def _fused(optimizer_class: Any) -> type:
    """The class Keras runs for `optimizer_class` on PyTorch."""
    return type(optimizer_class.__new__(optimizer_class))


# Keras's fused class -> the rule that replaces its rule. AdamW's is Adam's.
RULES: dict[type, Rule] = {
    _fused(keras.optimizers.SGD): sgd,
    _fused(keras.optimizers.Adadelta): adadelta,
    _fused(keras.optimizers.Adam): adam,
    _fused(keras.optimizers.AdamW): adam,
    _fused(keras.optimizers.Adamax): adamax,
    _fused(keras.optimizers.Nadam): nadam,
}
