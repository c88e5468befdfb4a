"""Tolerances for values that come out of a model's arithmetic.

Rates, counters and configs are scalar formulas and are compared exactly (or
to float32 rounding of the rate). Weights after real updates are not: they
depend on the kernels that compute the gradients, whose rounding differs
between CPUs. TensorFlow's oneDNN kernels, for one, compute float16 natively
on CPUs with AVX512-FP16 or AMX, and round differently from a CPU that
computes it in float32. So a weight is compared within the error that
rounding can make, derived here from the dtype the model computes in and
the number of roundings on the path of a gradient.
"""

import numpy as np

# Unit roundoff (half the machine epsilon) of each compute dtype: the largest
# relative error of one rounded operation.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def float32_sum_rtol(terms):
    """The relative tolerance of a float32 running sum of `terms` positive
    terms (a weight that plain SGD moves by each rate in turn) against their
    exact sum: each term is rounded to float32 once and each addition once
    (or once for both, where they fuse), each off by at most the float32 unit
    roundoff of the sum so far. To first order, at most `2 * terms * u32`."""
    return 2 * terms * UNIT_ROUNDOFF["float32"]


def assert_within_rounding(
    got, want, *, rates, moves, compute_dtype, roundings, rule_roundings
):
    """Each weight in `got` is within the error that rounding can make of
    the same weight in `want`, to first order in the unit roundoff.

    Args:
        got: the weights computed here.
        want: the weights recorded (on another machine, perhaps).
        rates: the learning rate of each update that led from a common state
            to these weights, shape `(updates,)`.
        moves: how far each of those updates moved each weight, shape
            `(updates, *got.shape)`.
        compute_dtype: the dtype the model's layers compute in (the policy's
            `compute_dtype`).
        roundings: the number of rounded operations on the path from the
            inputs to one gradient entry (forward, loss and backward), in
            `compute_dtype`.
        rule_roundings: the same for the update rule, in float32 (the dtype
            of the weights and the optimizer's state), counting each
            rounding as often as the rule amplifies it.

    Each gradient entry is off by `roundings * u` at most, `u` the compute
    dtype's unit roundoff, relative to the magnitudes of the terms summed to
    make it (relative to the entry itself where they do not cancel); the rule
    adds `rule_roundings * u32`: together a relative `delta`. An update moves
    a weight by its rate times a factor of the gradient.

    - A rule linear in the gradient (SGD, with or without momentum) is off
      by `delta` times the move, or by `delta` times the rate where terms
      cancel: this bound takes the terms' magnitudes to be at most 1 or the
      gradient's, as they are for the small models of the tests.
    - A rule that divides by a running norm of the gradient (RMSprop,
      Adagrad, Adadelta, Adam, Adamax, Nadam) moves a weight by a few times
      its rate at most, whatever the gradient's size (up to
      `1 / sqrt(1 - rho)` for a norm decaying by `rho`), and a relative
      error in the newest gradient changes the move by no more than that
      error times the move, or times the rate where the move is small.

    So each update adds at most `delta * max(rate, |move|)`, and storing its
    result in float32 one rounding of the weight. Both sides carry such an
    error: they may differ by twice the sum.
    """
    got, want = np.asarray(got, "float64"), np.asarray(want, "float64")
    moves = np.abs(np.asarray(moves, "float64"))
    rates = np.asarray(rates, "float64").reshape((-1,) + (1,) * got.ndim)
    u32 = UNIT_ROUNDOFF["float32"]
    delta = roundings * UNIT_ROUNDOFF[compute_dtype] + rule_roundings * u32
    one_side = delta * np.maximum(rates, moves).sum(axis=0)
    one_side += len(rates) * u32 * np.abs(want)
    bound = 2 * one_side
    difference = np.abs(got - want)
    wrong = difference > bound
    assert not wrong.any(), (
        f"{int(wrong.sum())} of {wrong.size} weights differ by more than rounding "
        f"allows: {difference[wrong].max():.3g} where the bound is "
        f"{bound[wrong][np.argmax(difference[wrong])]:.3g}"
    )
