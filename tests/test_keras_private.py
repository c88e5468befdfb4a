"""The private parts of Keras the package relies on are there, with the
arguments it expects, and the package uses no other (`_keras_private`)."""

import ast
import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import clr_optimizers
from clr_optimizers._keras_private import (
    ATTRIBUTES,
    HOOKS,
    LOSS_SCALE_LOAD,
    MOVED_IN_KERAS_3_10,
    PER_CALL_STATE,
)

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

# What each CLR class is built on: on PyTorch, Keras's fused variant.
STOCK = [getattr(keras.optimizers, opt.__name__) for opt in clr_optimizers.OPTIMIZERS]
BASES = {stock.__name__: type(stock.__new__(stock)) for stock in STOCK}
PACKAGE = Path(clr_optimizers.__file__).parent


@pytest.mark.parametrize("name", HOOKS)
@pytest.mark.parametrize("base", BASES.values(), ids=BASES)
def test_every_overridden_method_is_there_with_its_arguments(base, name):
    expected, where = HOOKS[name]
    method = getattr(base, name, None)
    assert method is not None, (
        f"Keras {keras.__version__}: {base.__qualname__} has no method {name} "
        f"any more. The package relies on it in {where}."
    )
    found = tuple(inspect.signature(method).parameters)[1:]
    assert found == expected, (
        f"Keras {keras.__version__}: {base.__qualname__}.{name} now takes "
        f"({', '.join(found)}) instead of ({', '.join(expected)}). The package "
        f"relies on it in {where}."
    )


@pytest.mark.parametrize("name", ATTRIBUTES)
@pytest.mark.parametrize("base", BASES.values(), ids=BASES)
def test_every_read_attribute_is_there(base, name):
    optimizer = base(learning_rate=0.01)
    assert hasattr(optimizer, name), (
        f"Keras {keras.__version__}: a {base.__qualname__} has no attribute "
        f"{name} any more. The package reads it as {ATTRIBUTES[name]}."
    )


@pytest.mark.parametrize("name", PER_CALL_STATE)
def test_the_state_advanced_per_call_is_there_once_built(name):
    optimizer = getattr(keras.optimizers, name)(learning_rate=0.01)
    optimizer.build([keras.Variable([1.0, 2.0])])
    assert isinstance(getattr(optimizer, PER_CALL_STATE[name]), keras.Variable), (
        f"Keras {keras.__version__}: a built {name} has no variable "
        f"{PER_CALL_STATE[name]} any more; the package restores it between the "
        "update rule's calls for each group of variables."
    )


@pytest.mark.parametrize("name", MOVED_IN_KERAS_3_10)
def test_the_variable_keras_moved_and_its_slots_are_there_once_built(name):
    optimizer = getattr(keras.optimizers, name)(learning_rate=0.01)
    optimizer.build([keras.Variable([1.0, 2.0]), keras.Variable(3.0)])
    moved, slot_lists = MOVED_IN_KERAS_3_10[name]
    assert isinstance(getattr(optimizer, moved), keras.Variable), moved
    for slots in slot_lists:
        assert len(getattr(optimizer, slots)) == 2, (
            f"Keras {keras.__version__}: a built {name} has no slot list "
            f"{slots} any more; the package finds there where {moved} stood in "
            "state saved by Keras before 3.10."
        )


def test_the_package_uses_no_other_private_name_of_a_keras_optimizer():
    keras_names = {
        name
        for base in BASES.values()
        for name in (*dir(base), *vars(base(learning_rate=0.01)))
        if name.startswith("_") and not name.startswith("__")
    }
    used = {}
    for path in PACKAGE.rglob("*.py"):
        for name in re.findall(r"\.(_[a-z][a-z0-9_]*)\b", path.read_text()):
            used.setdefault(name, path.name)
    unlisted = {
        name: where
        for name, where in used.items()
        if name in keras_names and name not in HOOKS and name not in ATTRIBUTES
    }
    assert not unlisted, (
        "These private names of Keras optimizers are used but not listed in "
        f"clr_optimizers/_keras_private.py: {unlisted}"
    )


def underscored_reads(tree):
    """`(line, expression)` of each read of an underscored attribute of
    anything but `self`, `cls`, `super()` or an imported module."""
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.update(a.asname or a.name for a in node.names)
    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name, owner = node.args[1].value, node.args[0]
        if name is None or not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(owner, ast.Name) and (
            owner.id in ("self", "cls") or owner.id in modules
        ):
            continue
        if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
            continue
        found.append((node.lineno, node.col_offset, ast.unparse(node)))
    return [(line, text) for line, _, text in sorted(found)]


def test_no_module_reads_another_class_private_attributes():
    """Each class keeps its state to itself: other modules use its public
    interface (the schedule's through `ScheduleState`); the private names of
    Keras are read in `_keras_private.py` only."""
    reads = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_keras_private.py":
            continue
        found = underscored_reads(ast.parse(path.read_text()))
        if found:
            reads[str(path.relative_to(PACKAGE))] = found
    assert not reads, reads


def test_the_check_sees_a_read_of_another_object_private_attribute():
    tree = ast.parse(
        "class A:\n"
        "    def f(self, other):\n"
        "        return self._x + other._policy + getattr(other, '_y', 0)\n"
    )
    assert [text for _, text in underscored_reads(tree)] == [
        "other._policy",
        "getattr(other, '_y', 0)",
    ]


def test_the_loss_scale_loading_replacement_wraps_keras_own():
    """`LossScaleOptimizer.load_own_variables` is the one Keras method the
    package replaces (`LOSS_SCALE_LOAD`): Keras's is there with the arguments
    it expects, the replacement keeps it for any other wrapped optimizer, and
    what it reads of the wrapper is there too."""
    cls = keras.optimizers.LossScaleOptimizer
    name, where = LOSS_SCALE_LOAD
    replacement = getattr(cls, name)
    stock = replacement.wraps_stock
    assert tuple(inspect.signature(stock).parameters)[1:] == ("store",), where
    wrapper = cls(keras.optimizers.SGD())
    assert hasattr(wrapper, "_variables") and hasattr(wrapper, "inner_optimizer")
    # Around a stock optimizer, Keras's own loading: a store that does not
    # match is skipped with Keras's warning.
    wrapper.build([keras.Variable(np.zeros(2, "float32"))])
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        wrapper.load_own_variables({"0": np.array(1)})
