"""Reference text generated from the code: the documentation of the `clr`
keys, from the families' declarations, and the type stub of the seven
classes, from the stock classes' signatures.

`help(SGD)` and the API page show `ARGUMENTS`; `optimizers.pyi` is
`stub()`, which the command `REGENERATE` writes; a test fails when the
committed file differs from it.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from clr_optimizers._policies import (
    COMMON,
    FAMILIES,
    REQUIRED,
    Cyclical,
    Key,
    Policy,
    warmup,
)

_WIDTH = 79


def _key_line(key: Key) -> str:
    if key.default is REQUIRED:
        tail = " Required."
    elif key.default is None:
        tail = ""
    else:
        tail = f" Defaults to `{key.default!r}`.".replace("'", '"')
    return f"- `{key.name}`: {key.doc}{tail}"


def _family_title(family: type[Policy]) -> str:
    if family is Cyclical:
        modes = ", ".join(f'`"{m}"`' for m in family.modes if m)
        return (
            f"The cyclical modes ({modes}; or `scale_fn` instead of a mode), "
            "between the floor and `max_lr`:"
        )
    title = f"Mode `{family.modes[0]!r}`".replace("'", '"')
    if family.derived_floor is not None:
        title += f"; without `learning_rate`, the floor is {family.derived_floor}"
    return title + ":"


def _paragraph(text: str, indent: str, hanging: str = "") -> list[str]:
    return textwrap.wrap(
        text, _WIDTH, initial_indent=indent, subsequent_indent=indent + hanging
    )


def _bullets(keys: tuple[Key, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for key in keys:
        lines += textwrap.wrap(
            _key_line(key),
            _WIDTH,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
        )
    return lines


def arguments() -> str:
    """The `Args:` section of `clr`, `groups`, `lr` and `decay`."""
    body = " " * 8
    lines = [
        "Args:",
        *_paragraph(
            "clr: `None` (the stock optimizer) or a dict describing the "
            'schedule, whose floor (or, in mode `"one_cycle"`, start) is '
            "`learning_rate`. Every key, by the family that reads it:",
            " " * 4,
            "    ",
        ),
        "",
        *_paragraph("Every mode:", body),
        "",
        *_bullets((*COMMON, *warmup.KEYS), body),
    ]
    for family in FAMILIES:
        lines += ["", *_paragraph(_family_title(family), body), ""]
        lines += _bullets(family.keys, body)
        if family.no_decay is not None:
            lines += [
                "",
                *_paragraph(f"`decay` does not apply: {family.no_decay}.", body),
            ]
    no_decay = ", ".join(
        f"`{f.modes[0]!r}`".replace("'", '"') for f in FAMILIES if f.no_decay
    )
    lines += [
        "",
        *_paragraph(
            "groups: `None`, or a list of dicts that give parts of the model "
            "rates of their own, following the same schedule (discriminative "
            "rates). Each selects variables by `layers` (Keras layers or "
            "layer names) or `paths` (patterns on variable paths, such as "
            '`"conv*"`) and gives either `factor` (on the whole schedule) or '
            "`learning_rate` and `max_lr` (its own bounds; one of them alone "
            "keeps the optimizer's proportion), and optionally `name` (for "
            "logs; `group_1`, ... by default). Variables that no group "
            "selects follow the optimizer's own bounds. See `spread` for "
            "fastai's geometric spread. Defaults to `None`.",
            " " * 4,
            "    ",
        ),
        *_paragraph(
            "lr: The old spelling of `learning_rate`. Defaults to `None`.",
            " " * 4,
            "    ",
        ),
        *_paragraph(
            "decay: Time-based decay of the floor, `learning_rate / (1 + decay "
            f"* n)` after `n` updates, which never lowers the peak. Not for the "
            f"modes {no_decay}. Defaults to `None`.",
            " " * 4,
            "    ",
        ),
    ]
    # Indented as a docstring's body, after the first line.
    return "\n".join(f"    {line}".rstrip() for line in lines) + "\n"


ARGUMENTS = arguments()

# The annotation of each stock argument whose default does not tell it.
_ANNOTATIONS = {
    "learning_rate": "Rate",
    "name": "str | None",
    "ema_overwrite_frequency": "int | None",
    "gradient_accumulation_steps": "int | None",
}
_EXTRA = {
    "clr": "dict[str, Any] | None",
    "groups": "list[dict[str, Any]] | None",
    "lr": "float | None",
    "decay": "float | None",
}


def _annotation(name: str, default: Any) -> str:
    if name in _ANNOTATIONS:
        return _ANNOTATIONS[name]
    if default is None:
        return "float | None"
    return type(default).__name__


def stub() -> str:
    """`optimizers.pyi` for the installed Keras."""
    import keras

    from clr_optimizers.optimizers import OPTIMIZERS

    parts = [
        '"""Type information for the seven classes that `cyclical()` makes at '
        "run time:\ntheir arguments are those of the Keras class of the same "
        "name, plus `clr`,\n`groups`, `lr` and `decay`; and `get`. Generated by "
        f'`_docs.stub()` from\nthe signatures of Keras {keras.__version__}."""\n',
        "from collections.abc import Mapping\nfrom typing import Any, TypeAlias\n",
        "import keras\n",
        "from clr_optimizers._optimizer import CyclicalOptimizer\n",
        "Rate: TypeAlias = float | keras.optimizers.schedules.LearningRateSchedule\n",
    ]
    for cls in OPTIMIZERS:
        name = cls.__name__
        lines = [
            f"class {name}(CyclicalOptimizer, keras.optimizers.{name}):",
            f'    """`keras.optimizers.{name}` with a cyclical learning rate."""',
            "",
            "    def __init__(",
            "        self,",
        ]
        keyword_only = False
        for param in inspect.signature(cls).parameters.values():
            if param.kind is inspect.Parameter.KEYWORD_ONLY and not keyword_only:
                lines.append("        *,")
                keyword_only = True
            annotation = _EXTRA.get(param.name) or _annotation(
                param.name, param.default
            )
            lines.append(f"        {param.name}: {annotation} = {param.default!r},")
        lines.append("    ) -> None: ...")
        parts.append("\n".join(lines) + "\n")
    parts.append("OPTIMIZERS: tuple[type[CyclicalOptimizer], ...]\n")
    parts.append(
        "def get(identifier: str | Mapping[str, Any], **kwargs: Any) "
        "-> CyclicalOptimizer: ..."
    )
    return "\n".join(parts) + "\n"


REGENERATE = (
    "python -c \"from clr_optimizers import _docs; print(_docs.stub(), end='')\" "
    "> clr_optimizers/optimizers.pyi"
)
