"""Every code example of the documentation runs: the blocks fenced as
```python in each page of `docs/` and in the README, in order, in one
namespace per page, on the backend the suite runs on. (Code that cannot run
here, such as Keras 2 code in the migration guides, is written as a
`{code-block} python` directive, which is shown and not run.)"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples(page):
    return BLOCK.findall(page.read_text())


def test_the_pages_are_there_and_every_python_fence_is_an_example():
    assert len(PAGES) > 10
    for page in PAGES:
        fences = re.findall(r"^\s*```python\s*$", page.read_text(), re.MULTILINE)
        # An indented fence (inside a list) would not be found, and so not run.
        assert len(fences) == len(examples(page)), page


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if examples(page)],
    ids=lambda page: str(page.relative_to(ROOT)),
)
def test_every_example_runs(page, tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # what an example writes, it writes here
    namespace = {"__name__": "__main__"}
    try:
        for number, code in enumerate(examples(page), start=1):
            exec(compile(code, f"{page.name}, example {number}", "exec"), namespace)
    finally:
        plt.close("all")


def docstring_examples():
    """The examples in the docstrings of the public API, which the API
    reference shows: `{name: code}`."""
    import inspect

    import clr_optimizers
    from clr_optimizers import schedules

    objects = {"clr_optimizers": clr_optimizers, "schedules": schedules}
    for module in (clr_optimizers, schedules):
        for name in module.__all__:
            value = getattr(module, name)
            objects[f"{module.__name__}.{name}"] = value
            if inspect.isclass(value):
                for member, attribute in vars(value).items():
                    objects[f"{module.__name__}.{name}.{member}"] = attribute
    found = {}
    for name, value in objects.items():
        for number, code in enumerate(BLOCK.findall(inspect.getdoc(value) or "")):
            if code not in found.values():
                found[f"{name}, example {number + 1}"] = code
    return found


DOCSTRING_EXAMPLES = docstring_examples()


def test_the_docstrings_have_examples():
    assert len(DOCSTRING_EXAMPLES) >= 7, list(DOCSTRING_EXAMPLES)


@pytest.mark.parametrize("name", DOCSTRING_EXAMPLES)
def test_every_docstring_example_runs(name, tmp_path, monkeypatch):
    """Run with a small compiled `model` and its data (`x`, `y`, `x_train`,
    `y_train`, `steps` updates per epoch), which the examples take as given."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    import clr_optimizers
    from clr_optimizers import schedules

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=clr_optimizers.SGD(
            learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4}
        ),
        loss="binary_crossentropy",
    )
    namespace = {
        **{n: getattr(clr_optimizers, n) for n in clr_optimizers.__all__},
        **{n: getattr(schedules, n) for n in schedules.__all__},
        "clr_optimizers": clr_optimizers,
        "keras": keras,
        "np": np,
        "model": model,
        "x": x,
        "y": y,
        "x_train": x,
        "y_train": y,
        "steps": 2,
    }
    try:
        exec(compile(DOCSTRING_EXAMPLES[name], name, "exec"), namespace)
    finally:
        plt.close("all")
