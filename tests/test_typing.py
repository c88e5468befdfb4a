"""The seven classes show their real arguments to `inspect`, `help` and type
checkers: the stub `optimizers.pyi` matches the classes, and mypy catches a
misspelt argument or a wrong use of a reported value."""

import ast
import inspect
import os
import pydoc
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import clr_optimizers
from clr_optimizers import OPTIMIZERS, _docs
from clr_optimizers._policies import FAMILIES, KEYS, MODES

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

STUB = Path(clr_optimizers.__file__).parent / "optimizers.pyi"
EXTRA = ("clr", "groups", "lr", "decay")


def stock_parameters(name):
    stock = getattr(keras.optimizers, name)
    return [
        p
        for p in list(inspect.signature(stock.__init__).parameters.values())[1:]
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_signature_is_the_stock_one_plus_the_extra_arguments(Opt):
    params = list(inspect.signature(Opt).parameters.values())
    stock = stock_parameters(Opt.__name__)
    assert [(p.name, p.default) for p in params[: len(stock)]] == [
        (p.name, p.default) for p in stock
    ]
    assert [p.name for p in params[len(stock) :]] == list(EXTRA)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[len(stock) :])
    text = pydoc.render_doc(Opt, renderer=pydoc.plaintext)
    for name in (*(p.name for p in stock), *EXTRA):
        assert f"{name}=" in text, name


def stub_signatures():
    """`{class: [(argument, default), ...]}` from the stub's `__init__`s."""
    tree = ast.parse(STUB.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            (init,) = [n for n in node.body if isinstance(n, ast.FunctionDef)]
            args = init.args
            positional = args.args[1:]
            defaults = [ast.literal_eval(d) for d in args.defaults]
            found[node.name] = [
                *zip([a.arg for a in positional], defaults, strict=True),
                *(
                    (a.arg, ast.literal_eval(d))
                    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                ),
            ]
    return found


def test_the_stub_declares_each_class_with_its_real_arguments():
    stubs = stub_signatures()
    assert set(stubs) == {opt.__name__ for opt in OPTIMIZERS}
    for opt in OPTIMIZERS:
        real = [(p.name, p.default) for p in inspect.signature(opt).parameters.values()]
        # The stub follows the latest Keras; older ones named an optimizer by
        # default ("SGD"), where the stub's `None` also serves.
        real = [(n, None if n == "name" else d) for n, d in real]
        assert stubs[opt.__name__] == real, opt.__name__


USER_CODE = textwrap.dedent(
    """
    from clr_optimizers import SGD, Adam, LearningRateMonitor, schedules

    reveal_type(SGD)
    good = Adam(learning_rate=0.01, beta_1=0.9, clr={"max_lr": 0.1, "step_size": 4})
    rate: float = good.current_lr
    rates = LearningRateMonitor().learning_rates
    bad = Adam(learnin_rate=0.01)
    text: str = SGD().current_lr
    schedule = schedules.CLRSchedule(0.01, {"max_lr": 0.1, "step_size": 4})
    """
)


def test_mypy_sees_the_classes_and_catches_user_errors(tmp_path):
    pytest.importorskip("mypy")
    path = tmp_path / "user.py"
    path.write_text(USER_CODE)
    env = dict(os.environ)
    source = Path(clr_optimizers.__file__).parents[1]
    if source.name not in ("site-packages", "dist-packages"):
        # A checkout installed in editable mode, which mypy does not follow.
        env["MYPYPATH"] = str(source)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--ignore-missing-imports",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    lines = out.stdout.splitlines()
    errors = [line for line in lines if ": error:" in line]
    assert any('Unexpected keyword argument "learnin_rate"' in e for e in errors), lines
    assert any(
        'Incompatible types in assignment (expression has type "float", variable '
        'has type "str")' in e
        for e in errors
    ), lines
    assert len(errors) == 2, lines  # the correct lines pass
    (revealed,) = [line for line in lines if "Revealed type" in line]
    assert "learning_rate" in revealed and "clr_optimizers.optimizers.SGD" in revealed


def stub_keras_version():
    """The Keras version whose signatures the committed stub follows."""
    match = re.search(r"Keras (\d+\.\d+\.\d+)", STUB.read_text())
    assert match, "the stub names the Keras version it was generated from"
    return tuple(int(part) for part in match.group(1).split("."))


def test_the_committed_stub_is_the_generated_one():
    installed = tuple(int(p) for p in keras.__version__.split(".")[:3] if p.isdigit())
    if installed < stub_keras_version():
        # The oldest supported Keras (the floors job) has other signatures.
        pytest.skip(f"the stub follows Keras {stub_keras_version()}")
    # The version it names aside: a new Keras release fails this only when
    # it changes a signature.
    version = re.compile(r"Keras \d+\.\d+\.\d+")
    committed = version.sub("Keras", STUB.read_text())
    assert committed == version.sub("Keras", _docs.stub()), (
        "clr_optimizers/optimizers.pyi differs from what the classes' signatures "
        f"give; regenerate it: {_docs.REGENERATE}"
    )


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_help_documents_every_clr_key(Opt):
    text = pydoc.render_doc(Opt, renderer=pydoc.plaintext)
    missing = [key for key in KEYS if f"`{key}`" not in text]
    assert not missing, f"help({Opt.__name__}) does not document {missing}"
    # Each family with its modes, and where `decay` does not apply.
    for mode in MODES:
        assert f'"{mode}"' in text, mode
    assert text.count("`decay` does not apply") == sum(
        f.no_decay is not None for f in FAMILIES
    )


def test_the_api_page_documents_the_clr_keys_once():
    """The seven classes point to `CyclicalOptimizer`, whose docstring holds
    the keys: Sphinx's autoclass shows the class docstrings."""
    for opt in OPTIMIZERS:
        assert "`step_size`" not in opt.__doc__
        assert "CyclicalOptimizer" in opt.__doc__
    assert all(f"`{key}`" in clr_optimizers.CyclicalOptimizer.__doc__ for key in KEYS)
