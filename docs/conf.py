"""Sphinx configuration: Markdown pages (MyST), the furo theme, and an API
reference generated from the docstrings.

    pip install ".[tensorflow,docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version as installed_version

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

project = "clr-optimizers"
author = "The clr-optimizers authors"
copyright = "the clr-optimizers authors, MIT licence"
release = installed_version("clr-optimizers")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax from the site itself, not from a CDN: the maths renders offline.
    "sphinx-mathjax-offline",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"clr-optimizers {release}"
# Inline code in docstrings is written `like this`, as in Markdown.
default_role = "literal"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Keras ships no type information: its names in signatures stay unresolved.
nitpicky = False

_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def _markdown_fences_to_rst(app, what, name, obj, options, lines):
    """Docstrings show code in Markdown fences (```python ... ```), which read
    well in `help()`; Sphinx gets them as code blocks."""
    out: list[str] = []
    inside = False
    indent = ""
    for line in lines:
        match = _FENCE.match(line)
        if match and not inside:
            indent, language = match.group(1), match.group(2) or "text"
            out += [f"{indent}.. code-block:: {language}", ""]
            inside = True
        elif match and inside and match.group(1) == indent:
            out.append("")
            inside = False
        elif inside:
            out.append(f"{indent}   {line[len(indent) :]}" if line.strip() else "")
        else:
            out.append(line)
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _markdown_fences_to_rst)
