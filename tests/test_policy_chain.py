"""Mode "chain", policies in sequence, update by update: against optax's
join_schedules, PyTorch's SequentialLR and NumPy restatements, each piece as a
policy of its own from its own start on both sides of every boundary;
assigning the learning rate scales every piece; and at large update counts."""

import numpy as np
import pytest
from conftest import COUNTER_MAX, torch_schedule
from policy_references import (
    CHAINS,
    FLOOR,
    MOMENTUM,
    PEAK,
    RTOL,
    cyclical_height,
    half_cycle_ends,
    joined,
    lr_scheduler,
    momenta_of,
    optax_cosine_cycles,
    optax_rates,
    rates_of,
    schedule_values,
    sgdr_kwargs,
    sgdr_weight,
)

from clr_optimizers import SGD

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors


def cos_cycles_between(optax, low, high):
    """optax's cosine interpolation over cycles of 4 and 6 updates between
    `low` and `high`, the peaks halving (triangular2 with a cosine ramp)."""
    values, bounds = half_cycle_ends(4, 6, 5, lambda c: 0.5 ** (c - 1))
    values = [low + (v - FLOOR) * (high - low) / (PEAK - FLOOR) for v in values]
    return optax_cosine_cycles(optax, values, bounds)


# (id, clr, optax schedule, updates); the optimizer's learning rate is FLOOR.
OPTAX_CHAINS = [
    (
        # A rising half cycle, then one cosine anneal: optax's
        # warmup_cosine_decay_schedule.
        "rise, anneal",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"step_size": 30},
                {"mode": "warm_restarts", "period": 100, "cycle_limit": 1, "learning_rate": 0.002},
            ],
            "boundaries": [30],
        },
        lambda optax: optax.warmup_cosine_decay_schedule(FLOOR, PEAK, 30, 130, end_value=0.002),
        160,
    ),
    (
        "restarts, cos cycles, anneal",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"mode": "warm_restarts", "period": 5, "period_mult": 2, "peak_mult": 0.5, "learning_rate": 0.005},
                {"step_size_up": 4, "step_size_down": 6, "mode": "triangular2", "ramp": "cos", "learning_rate": 0.02, "max_lr": 0.05},
                {"mode": "warm_restarts", "period": 20, "cycle_limit": 1},
            ],
            "boundaries": [30, 80],
        },
        lambda optax: optax.join_schedules(
            [
                optax.sgdr_schedule(sgdr_kwargs(5, 2, 0.5, 3, floor=0.005)),
                cos_cycles_between(optax, 0.02, 0.05),
                optax.cosine_decay_schedule(PEAK, 20, alpha=FLOOR / PEAK),
            ],
            [30, 80],
        ),
        120,
    ),
    (
        "constant, rise, fractional restarts",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"step_size": 1, "learning_rate": 0.02, "max_lr": 0.02},
                {"step_size": 25, "learning_rate": 0.005},
                {"mode": "warm_restarts", "period": 2.5, "period_mult": 2, "peak_mult": 0.9, "cycle_limit": 4},
            ],
            "boundaries": [15, 40],
        },
        lambda optax: optax.join_schedules(
            [
                optax.constant_schedule(0.02),
                optax.linear_schedule(0.005, PEAK, 25),
                optax.sgdr_schedule(sgdr_kwargs(2.5, 2, 0.9, 4)),
            ],
            [15, 40],
        ),
        100,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "make", "updates"),
    [case[1:] for case in OPTAX_CHAINS],
    ids=[case[0] for case in OPTAX_CHAINS],
)
def test_chain_matches_optax_join_schedules(clr, make, updates):
    expected = optax_rates(make, updates)
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


# (id, PyTorch schedulers of an optimizer `o` whose lr is PEAK, milestones,
# the pieces, updates); the optimizer's learning rate is FLOOR. Every
# scheduler under SequentialLR starts from the optimizer's initial rate, the
# chain's max_lr.
PYTORCH_CHAINS = [
    (
        "restarts, anneal, cyclic",
        lambda o: [
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
            lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=FLOOR),
            lr_scheduler.CyclicLR(o, base_lr=0.02, max_lr=0.05, step_size_up=4, cycle_momentum=False),
        ],
        [15, 35],
        [
            {"mode": "warm_restarts", "period": 5, "period_mult": 2, "learning_rate": 0.001},
            {"mode": "warm_restarts", "period": 20},
            {"step_size": 4, "learning_rate": 0.02, "max_lr": 0.05},
        ],
        80,
    ),
    (
        "linear, restarts",
        lambda o: [
            lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=FLOOR),
        ],
        [10],
        [
            {"step_size": 10, "learning_rate": 0.1 * PEAK},
            {"mode": "warm_restarts", "period": 7, "period_mult": 2},
        ],
        120,
    ),
    (
        "anneal, restarts, anneal",
        lambda o: [
            lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.02),
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=FLOOR),
            lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
        ],
        [12, 33],
        [
            {"mode": "warm_restarts", "period": 12, "cycle_limit": 1, "learning_rate": 0.02},
            {"mode": "warm_restarts", "period": 3, "period_mult": 2},
            {"mode": "warm_restarts", "period": 30, "cycle_limit": 1, "learning_rate": 0.001},
        ],
        # CosineAnnealingLR rises again after T_max: compared up to its floor.
        63,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schedulers", "milestones", "pieces", "updates"),
    [case[1:] for case in PYTORCH_CHAINS],
    ids=[case[0] for case in PYTORCH_CHAINS],
)
def test_chain_matches_pytorch_sequential_lr(schedulers, milestones, pieces, updates):
    expected, _ = torch_schedule(
        lambda o: lr_scheduler.SequentialLR(o, schedulers(o), milestones=milestones),
        updates,
        PEAK,
    )
    clr = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": pieces,
        "boundaries": milestones,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


@pytest.mark.parametrize("chain", CHAINS)
def test_chain_is_its_pieces_one_by_one(chain):
    learning_rate, clr, references = CHAINS[chain]
    boundaries = clr["boundaries"]
    updates = boundaries[-1] + 40
    pieces = [reference(updates) for reference in references]
    expected = joined(pieces, boundaries, updates)
    opt = SGD(learning_rate=learning_rate, clr={**clr, "momentum": MOMENTUM})
    rates = rates_of(opt, updates)
    np.testing.assert_allclose(rates, expected, rtol=RTOL)
    # Each piece as a policy of its own, from its own start; both sides of
    # every boundary.
    starts = [0, *boundaries, updates]
    for j, piece in enumerate(clr["policies"]):
        piece = {"max_lr": clr["max_lr"], **piece, "momentum": MOMENTUM}
        floor = piece.pop("learning_rate", learning_rate)
        alone = SGD(learning_rate=floor, clr=piece)
        length = starts[j + 1] - starts[j]
        np.testing.assert_allclose(
            rates[starts[j] : starts[j + 1]], rates_of(alone, length), rtol=1e-6
        )
        np.testing.assert_allclose(
            momenta_of(opt, updates)[starts[j] : starts[j + 1]],
            momenta_of(alone, length),
            rtol=1e-6,
        )
    for j, boundary in enumerate(boundaries, start=1):
        for n in (boundary - 1, boundary, boundary + 1):
            if n >= starts[j - 1]:
                own = j if n >= boundary else j - 1
                assert rates[n] == pytest.approx(pieces[own][n - starts[own]], rel=RTOL)


def test_assigning_the_learning_rate_scales_every_piece():
    clr = CHAINS["warmups in pieces, one_cycle"][1]
    opt = SGD(learning_rate=0.02, clr=clr)
    before = rates_of(opt, 100)
    opt.learning_rate = 0.01
    np.testing.assert_allclose(rates_of(opt, 100), before / 2, rtol=1e-6)


def test_chain_at_large_counts():
    """A boundary just inside the 32-bit range and one at 10**12, which a
    32-bit counter never reaches."""
    first = 2**31 - 10
    clr = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": [
            {"step_size": 7},
            {"mode": "warm_restarts", "period": 5, "period_mult": 2},
            {
                "mode": "warm_restarts",
                "period": 1000,
                "cycle_limit": 1,
                "learning_rate": 0.001,
            },
        ],
        "boundaries": [first, 10**12],
    }
    counts = [first - 1, first, first + 1, COUNTER_MAX - 1]
    if COUNTER_MAX > 2**31:
        counts += [10**12 - 1, 10**12, 10**12 + 1, 10**12 + 999, 10**12 + 10**6]

    def expected(n):
        if n < first:
            return FLOOR + (PEAK - FLOOR) * cyclical_height(n, up=7, down=7)
        if n < 10**12:
            return FLOOR + (PEAK - FLOOR) * sgdr_weight(n - first, 5, 2)
        return 0.001 + (PEAK - 0.001) * sgdr_weight(n - 10**12, 1000, cycle_limit=1)

    got = schedule_values(FLOOR, clr, counts)
    np.testing.assert_allclose(got, [expected(n) for n in counts], rtol=RTOL)
