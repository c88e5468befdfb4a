"""Asymmetric cycles, cycled momentum and one-cycle against PyTorch's own
schedulers (`CyclicLR`, `OneCycleLR`), update by update."""

import numpy as np
import pytest
import torch
from conftest import torch_schedule
from scale_functions import inverse_cycle

from clr_optimizers import OPTIMIZERS, SGD

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CyclicLR = torch.optim.lr_scheduler.CyclicLR
OneCycleLR = torch.optim.lr_scheduler.OneCycleLR

BASE, PEAK = 0.01, 0.06
MOMENTUM = (0.85, 0.95)
# Float32 against PyTorch's float64, relative to the value compared.
RATE_RTOL = 2e-6
MOMENTUM_RTOL = 1e-6


def cyclic_lr(**kwargs):
    return lambda optimizer: CyclicLR(
        optimizer,
        base_lr=BASE,
        max_lr=PEAK,
        cycle_momentum=True,
        base_momentum=MOMENTUM[0],
        max_momentum=MOMENTUM[1],
        **kwargs,
    )


# (id, clr dict without max_lr, PyTorch CyclicLR arguments, updates)
CYCLIC = [
    ("triangular 2/6", {"step_size_up": 2, "step_size_down": 6}, {"step_size_up": 2, "step_size_down": 6}, 40),
    ("triangular 2000/6000", {"step_size_up": 2000, "step_size_down": 6000}, {"step_size_up": 2000, "step_size_down": 6000}, 20000),
    ("triangular up only", {"step_size_up": 3}, {"step_size_up": 3}, 30),
    ("triangular step_size", {"step_size": 4}, {"step_size_up": 4}, 40),
    ("triangular2 5/3", {"step_size_up": 5, "step_size_down": 3, "mode": "triangular2"}, {"step_size_up": 5, "step_size_down": 3, "mode": "triangular2"}, 60),
    ("triangular2 2.5/7.25", {"step_size_up": 2.5, "step_size_down": 7.25, "mode": "triangular2"}, {"step_size_up": 2.5, "step_size_down": 7.25, "mode": "triangular2"}, 100),
    ("exp_range 3/9", {"step_size_up": 3, "step_size_down": 9, "mode": "exp_range", "gamma": 0.999}, {"step_size_up": 3, "step_size_down": 9, "mode": "exp_range", "gamma": 0.999}, 300),
    (
        "modified_triangular2 4/2",
        {"step_size_up": 4, "step_size_down": 2, "mode": "modified_triangular2"},
        {"step_size_up": 4, "step_size_down": 2, "scale_fn": lambda c: 0.5 ** ((c - 1) % 3), "scale_mode": "cycle"},
        80,
    ),
    (
        "exp_range restart_every=2 3/5",
        {"step_size_up": 3, "step_size_down": 5, "mode": "exp_range", "gamma": 0.99, "restart_every": 2},
        {"step_size_up": 3, "step_size_down": 5, "scale_fn": lambda n: 0.99 ** (n % 16), "scale_mode": "iterations"},
        100,
    ),
    (
        "scale_fn 3/1",
        {"step_size_up": 3, "step_size_down": 1, "scale_fn": "clr_tests>inverse_cycle"},
        {"step_size_up": 3, "step_size_down": 1, "scale_fn": lambda c: 1 / c, "scale_mode": "cycle"},
        40,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "torch_args", "updates"),
    [case[1:] for case in CYCLIC],
    ids=[case[0] for case in CYCLIC],
)
def test_rates_and_momentum_match_pytorch_cyclic_lr(clr, torch_args, updates):
    assert inverse_cycle  # registered for "clr_tests>inverse_cycle"
    rates, momentums = torch_schedule(cyclic_lr(**torch_args), updates, BASE)
    opt = SGD(learning_rate=BASE, clr={"max_lr": PEAK, **clr, "momentum": MOMENTUM})
    np.testing.assert_allclose(opt.learning_rates(updates), rates, rtol=RATE_RTOL)
    np.testing.assert_allclose(
        opt.momentum_values(updates), momentums, rtol=MOMENTUM_RTOL
    )


def one_cycle_lr(total_steps, **kwargs):
    return lambda optimizer: OneCycleLR(
        optimizer,
        max_lr=0.1,
        total_steps=total_steps,
        base_momentum=MOMENTUM[0],
        max_momentum=MOMENTUM[1],
        **kwargs,
    )


# (id, extra clr keys, PyTorch OneCycleLR arguments, total_steps)
ONE_CYCLE = [
    ("defaults", {}, {}, 100),
    ("linear", {"anneal_strategy": "linear", "pct_start": 0.25, "div_factor": 10, "final_div_factor": 100}, {"anneal_strategy": "linear", "pct_start": 0.25, "div_factor": 10, "final_div_factor": 100}, 1000),
    ("three_phase cos", {"three_phase": True}, {"three_phase": True}, 100),
    ("three_phase linear", {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.4}, {"three_phase": True, "anneal_strategy": "linear", "pct_start": 0.4}, 1001),
    ("long", {"pct_start": 0.1}, {"pct_start": 0.1}, 100_000),
    ("shortest", {"pct_start": 0.7}, {"pct_start": 0.7}, 3),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "torch_args", "total_steps"),
    [case[1:] for case in ONE_CYCLE],
    ids=[case[0] for case in ONE_CYCLE],
)
def test_rates_and_momentum_match_pytorch_one_cycle_lr(clr, torch_args, total_steps):
    rates, momentums = torch_schedule(
        one_cycle_lr(total_steps, **torch_args), total_steps
    )
    opt = SGD(
        clr={
            "mode": "one_cycle",
            "max_lr": 0.1,
            "total_steps": total_steps,
            "momentum": MOMENTUM,
            **clr,
        }
    )
    ours = opt.learning_rates(total_steps)
    np.testing.assert_allclose(ours, rates, rtol=RATE_RTOL, atol=1e-9)
    np.testing.assert_allclose(
        opt.momentum_values(total_steps), momentums, rtol=MOMENTUM_RTOL
    )


def test_one_cycle_learning_rate_is_the_start_like_div_factor():
    rates, _ = torch_schedule(one_cycle_lr(50, div_factor=20), 50)
    opt = SGD(
        learning_rate=0.005, clr={"mode": "one_cycle", "max_lr": 0.1, "total_steps": 50}
    )
    np.testing.assert_allclose(opt.learning_rates(50), rates, rtol=RATE_RTOL)


WITH_MOMENTUM = [c for c in OPTIMIZERS if c.__name__ not in ("Adagrad", "Adadelta")]


@pytest.mark.parametrize("Opt", WITH_MOMENTUM, ids=lambda o: o.__name__)
def test_every_optimizer_with_momentum_cycles_it_like_pytorch(Opt):
    _, momentums = torch_schedule(cyclic_lr(step_size_up=3, step_size_down=5), 20, BASE)
    opt = Opt(
        learning_rate=BASE,
        clr={
            "max_lr": PEAK,
            "step_size_up": 3,
            "step_size_down": 5,
            "momentum": MOMENTUM,
        },
    )
    np.testing.assert_allclose(opt.momentum_values(20), momentums, rtol=MOMENTUM_RTOL)
