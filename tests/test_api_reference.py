"""The API reference (`docs/api.md`) shows every public name of the package
and every public member of its public classes.

Nothing is built. The page's directives (autodoc's `automodule`,
`autoclass`, `autofunction`, ... with their options, and the Python domain's
`py:class`, `py:method`, `py:data`, ...) are read as Sphinx reads them, and
what they document is worked out as autodoc would: `:members:` (all, or by
name) keeps only members with a docstring unless `:undoc-members:` is
given, `:exclude-members:` and `:inherited-members:` apply, a class's
docstring shows its `Attributes:` section, and a `py:` directive's name is
taken within the current module and class.

The public side comes from the installed package: the names in the
`__all__` of the package and of each public module (one without `__all__`:
the public names it defines), and for each public class the members that the
package's classes along its MRO define (up to the first class from outside
the package, such as a Keras optimizer, whose members are its own): their
attributes, properties and methods, annotated fields, attributes their
methods assign to `self`, and attributes their docstrings describe. A member
counts as shown under its class, or under any class along the MRO up to the
one that defines it (the seven optimizers' members are shown under
`CyclicalOptimizer`). A public name counts as shown under its own name or
as the same object under another (`clr_optimizers.optimizers.SGD` is
`clr_optimizers.SGD`).
"""

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from contextlib import suppress
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import clr_optimizers

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"
CONF = ROOT / "docs" / "conf.py"
PACKAGE = clr_optimizers.__name__

# The directives that document Python objects; `py:` may be left out.
MODULE_DIRECTIVES = {"automodule", "module", "currentmodule"}
CLASS_DIRECTIVES = {"autoclass", "autoexception", "class", "exception"}
MEMBER_DIRECTIVES = {
    "automethod",
    "autoattribute",
    "autoproperty",
    "method",
    "classmethod",
    "staticmethod",
    "attribute",
    "property",
}
OBJECT_DIRECTIVES = {"autofunction", "autodata", "autodecorator"}
OBJECT_DIRECTIVES |= {"function", "data", "decorator"}
KNOWN = MODULE_DIRECTIVES | CLASS_DIRECTIVES | MEMBER_DIRECTIVES | OBJECT_DIRECTIVES

FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<argument>.*?)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
DIRECTIVE = re.compile(
    r"^(?P<indent> *)\.\. +(?P<name>[\w:-]+)::[ \t]*(?P<argument>.*)$"
)
OPTION = re.compile(r"^(?P<indent> *):(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
NAME = re.compile(r"\s*([\w.]+)")


def indentation(line):
    return len(line) - len(line.lstrip(" "))


def split(value):
    return [part.strip() for part in (value or "").split(",") if part.strip()]


# The page.


def restructured_text(markdown):
    """The reStructuredText of the page's directives: the body of each
    `{eval-rst}` fence, and each MyST directive fence written as a directive."""
    for fence in FENCE.finditer(markdown):
        name = fence["name"].removeprefix("py:")
        if fence["name"] == "eval-rst":
            yield fence["body"]
        elif name in KNOWN:
            body = textwrap.indent(fence["body"], "   ")
            yield f".. {fence['name']}:: {fence['argument']}\n{body}"


def directives(text):
    """`(name, [signature, ...], {option: value}, indent)` of each directive,
    in the order of the text."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index])
        index += 1
        if not match:
            continue
        indent = len(match["indent"])
        signatures = [match["argument"].strip()]
        options = {}
        key = None
        while index < len(lines) and lines[index].strip():
            line = lines[index]
            if indentation(line) <= indent:
                break
            option = OPTION.match(line)
            if option:
                key = option["key"]
                options[key] = option["value"].strip()
            elif key is None:  # another signature, as in `py:method:: a()\n b()`
                signatures.append(line.strip())
            else:  # an option's value goes on
                options[key] = f"{options[key]} {line.strip()}".strip()
            index += 1
        yield match["name"], [s for s in signatures if s], options, indent


def object_name(signature):
    return NAME.match(signature).group(1)


@cache
def settings():
    """The settings of `docs/conf.py` that change what autodoc shows."""
    found = {
        "autodoc_default_options": {},
        "autodoc_inherit_docstrings": True,
        "extensions": [],
    }
    for node in ast.parse(CONF.read_text()).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in found:
                    with suppress(ValueError):  # not a literal: the default
                        found[target.id] = ast.literal_eval(node.value)
    return found


@cache
def page():
    """What the page documents:

    - `objects`: the full names of the modules, classes, functions and data
      it shows;
    - `members`: `{class: {names of the members it shows}}`;
    - `without_doc`: the `(class, member)` pairs listed in a `:members:`
      option that autodoc leaves out for want of a docstring;
    - `entries`: the `(class, member)` pairs the page names, by an entry
      or in `:members:` (to check that each is there);
    - `unresolved`: the names of entries that name nothing.
    """
    found = SimpleNamespace(
        objects=set(), members={}, without_doc=set(), entries=[], unresolved=[]
    )
    module = None  # the current module, as `py:currentmodule` sets it
    classes = []  # (indent, full name) of the classes whose content we are in
    defaults = {
        key.replace("_", "-"): "" if value is True else value
        for key, value in settings()["autodoc_default_options"].items()
    }
    text = "\n".join(restructured_text(PAGE.read_text()))
    for directive, signatures, given, indent in directives(text):
        automatic = directive.startswith("auto")
        directive = directive.removeprefix("py:")
        if directive not in KNOWN:
            continue
        while classes and classes[-1][0] >= indent:
            classes.pop()
        options = {**defaults, **given} if automatic else given
        names = [object_name(signature) for signature in signatures]
        if directive in MODULE_DIRECTIVES:
            module = None if names[0] == "None" else names[0]
            if directive != "currentmodule" and lookup(found, module):
                found.objects.add(module)
                if automatic:
                    document_module(found, module, options)
            continue
        for name in names:
            if classes:  # within a class: its member
                full = f"{classes[-1][1]}.{name}"
            elif automatic:  # autodoc takes a dotted name as it is
                full = name if "." in name or module is None else f"{module}.{name}"
            else:  # the Python domain puts every name within the current module
                full = name if module is None else f"{module}.{name}"
            if directive in MEMBER_DIRECTIVES:
                parent, _, member = full.rpartition(".")
                cls = lookup(found, parent)
                if cls is not None:
                    found.members.setdefault(cls, set()).add(member)
                    found.entries.append((cls, member))
            elif lookup(found, full) is not None:
                found.objects.add(full)
                if directive in CLASS_DIRECTIVES:
                    classes.append((indent, full))
                    if automatic:
                        document_class(found, resolve(full), options)
    return found


def lookup(found, name):
    """The object of a name the page gives, or `None` (noted) if none."""
    try:
        return resolve(name)
    except (ImportError, AttributeError):
        found.unresolved.append(name)
        return None


def document_module(found, name, options):
    """What `automodule` shows with these options (autodoc gives the
    module's members, and their members, the same options)."""
    if "members" not in options or "no-members" in options:
        return
    module = importlib.import_module(name)
    listed = split(options["members"])
    if listed:
        names = listed
    elif hasattr(module, "__all__") and "ignore-module-all" not in options:
        names = module.__all__
    else:
        names = defined_names(module)
    undocumented = "undoc-members" in options
    excluded = set(split(options.get("exclude-members")))
    for member in names:
        value = getattr(module, member)
        if member in excluded or not (undocumented or has_doc(module, member)):
            continue
        found.objects.add(f"{name}.{member}")
        if inspect.isclass(value):
            document_class(found, value, options)


def document_class(found, cls, options):
    """What `autoclass` shows with these options: its docstring, with any
    `Attributes:` section, and the members autodoc keeps."""
    members = found.members.setdefault(cls, set())
    if "sphinx.ext.napoleon" in settings()["extensions"]:
        members |= docstring_attributes(inspect.getdoc(cls))
    if "members" not in options or "no-members" in options:
        return
    listed = split(options["members"])
    if listed:
        names = listed
    else:
        names = [*vars(cls), *inspect.get_annotations(cls)]
        if "inherited-members" in options:
            stop = set(split(options["inherited-members"])) or {"object"}
            for base in cls.__mro__[1:]:
                if base.__name__ in stop:
                    break
                names += [*vars(base), *inspect.get_annotations(base)]
        names = [name for name in names if not name.startswith("_")]
    undocumented = "undoc-members" in options
    excluded = set(split(options.get("exclude-members")))
    for name in names:
        if listed:
            found.entries.append((cls, name))
        if name in excluded:
            continue
        if undocumented or has_doc(cls, name):
            members.add(name)
        elif listed:
            found.without_doc.add((cls, name))


def has_doc(owner, name):
    """Whether autodoc finds a docstring for the member (with
    `autodoc_inherit_docstrings`, also one of the same member of a base
    class); the docstring of a value's type is not the value's."""
    value = getattr(owner, name, None)
    if value is None:
        return False
    doc = getattr(value, "__doc__", None)
    if (
        doc is None
        and inspect.isclass(owner)
        and settings()["autodoc_inherit_docstrings"]
    ):
        for base in owner.__mro__:
            doc = getattr(getattr(base, name, None), "__doc__", None)
            if doc is not None:
                break
    if not isinstance(doc, str) or doc == getattr(type(value), "__doc__", None):
        return False
    return bool(doc.strip())


def resolve(name):
    """The object of a full dotted name: its longest importable module, then
    attributes."""
    parts = name.split(".")
    for stop in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:stop]))
        except ImportError:
            continue
        for part in parts[stop:]:
            value = getattr(value, part)
        return value
    raise ImportError(name)


# The package.


def public_modules(package=clr_optimizers):
    """The package and its modules whose names do not start with `_`."""
    found = [package]
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found += public_modules(module) if info.ispkg else [module]
    return found


def defined_names(module):
    """A module's public names without `__all__`: those it defines (not
    modules, not what it imports)."""
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
    ]


@cache
def public_names():
    """`{full name: object}` of every public name and public module."""
    found = {}
    for module in public_modules():
        if module is not clr_optimizers:
            found[module.__name__] = module
        names = getattr(module, "__all__", None)
        for name in defined_names(module) if names is None else names:
            found[f"{module.__name__}.{name}"] = getattr(module, name)
    return found


def package_classes(cls):
    """The classes along the MRO, up to the first from outside the package."""
    for klass in cls.__mro__:
        if klass.__module__ != PACKAGE and not klass.__module__.startswith(
            f"{PACKAGE}."
        ):
            return
        yield klass


def kind(value):
    if isinstance(value, property):
        return "property"
    if isinstance(value, (classmethod, staticmethod)):
        return type(value).__name__
    return "method" if inspect.isroutine(value) else "attribute"


def own_members(klass):
    """`{name: kind}` of the public members that a class of the package
    defines or describes itself."""
    found = {
        name: "attribute"
        for name in [
            *inspect.get_annotations(klass),
            *assigned_attributes(klass),
            *docstring_attributes(vars(klass).get("__doc__")),
        ]
    }
    found |= {name: kind(value) for name, value in vars(klass).items()}
    return {name: how for name, how in found.items() if not name.startswith("_")}


def functions(value):
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    if isinstance(value, classmethod):
        return [value.__func__]
    return [value] if inspect.isfunction(value) else []


def assigned_attributes(klass):
    """The attributes that the class's methods assign to `self`."""
    found = set()
    for value in vars(klass).values():
        for function in functions(value):
            try:
                tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
            except (OSError, TypeError, SyntaxError):  # generated, or a lambda
                continue
            definition = tree.body[0]
            if not isinstance(definition, ast.FunctionDef):
                continue
            arguments = [*definition.args.posonlyargs, *definition.args.args]
            if not arguments:
                continue
            me = arguments[0].arg
            for node in ast.walk(definition):
                if isinstance(node, ast.Assign):
                    targets = node.targets
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                    targets = [node.target]
                else:
                    continue
                found |= {
                    element.attr
                    for target in targets
                    for element in ast.walk(target)
                    if isinstance(element, ast.Attribute)
                    and isinstance(element.value, ast.Name)
                    and element.value.id == me
                }
    return found


def docstring_attributes(doc):
    """The names in the `Attributes:` section of a Google-style docstring."""
    found = set()
    header = entry = None  # the indentation of the section and its entries
    for line in inspect.cleandoc(doc or "").splitlines():
        if not line.strip():
            continue
        depth = indentation(line)
        if header is not None and depth <= header:
            header = None
        if header is None:
            if line.strip() == "Attributes:":
                header, entry = depth, None
            continue
        entry = depth if entry is None else entry
        match = re.match(r"(\w+)\s*(\(.*\))?\s*:", line.strip())
        if depth == entry and match:
            found.add(match.group(1))
    return found


@cache
def public_members():
    """`{(class, member): (defining class, kind)}` for each public class: the
    classes among the public names, and the package's classes on the page."""
    classes = [value for value in public_names().values() if inspect.isclass(value)]
    for name in sorted(page().objects):
        value = resolve(name)
        if inspect.isclass(value) and any(package_classes(value)):
            classes.append(value)
    found = {}
    for cls in dict.fromkeys(classes):
        for klass in package_classes(cls):
            for name, how in own_members(klass).items():
                found.setdefault((cls, name), (klass, how))
    return found


def label(cls):
    """The public name of a class (else where it is defined)."""
    names = [name for name, value in public_names().items() if value is cls]
    names += [name for name in sorted(page().objects) if resolve(name) is cls]
    return names[0] if names else f"{cls.__module__}.{cls.__qualname__}"


def immutable(value):
    return isinstance(value, (str, bytes, int, float, complex, type(None)))


# The tests.


def test_the_page_is_read():
    found = page()
    assert f"{PACKAGE}.CyclicalOptimizer" in found.objects, sorted(found.objects)
    assert "restart" in found.members[clr_optimizers.CyclicalOptimizer]
    assert len(found.entries) > 10, found.entries


def test_every_entry_names_an_object():
    found = page()
    known = public_members()
    wrong = list(found.unresolved)
    wrong += [
        f"{label(cls)}.{name}"
        for cls, name in found.entries
        if (cls, name) not in known and not hasattr(cls, name)
    ]
    assert not wrong, f"{PAGE.name} has entries for names that are not there: {wrong}"


def test_every_public_name_is_documented():
    objects = page().objects
    values = [resolve(name) for name in objects]
    missing = [
        name
        for name, value in public_names().items()
        if name not in objects
        # the same object shown under another name, such as
        # `clr_optimizers.SGD` for `clr_optimizers.optimizers.SGD`
        and (immutable(value) or all(value is not other for other in values))
    ]
    assert not missing, f"{PAGE.name} does not document the public names {missing}"


def test_every_public_member_is_documented():
    found = page()
    missing = {}  # {(defining class, member): [classes without it]}
    for (cls, name), (owner, how) in public_members().items():
        # Shown under the class, or under a class it inherits the member from.
        along = cls.__mro__[: cls.__mro__.index(owner) + 1]
        if not any(name in found.members.get(klass, ()) for klass in along):
            missing.setdefault((owner, name, how), []).append(cls)
    lines = []
    for (owner, name, how), classes in missing.items():
        note = how
        others = [label(cls).rpartition(".")[2] for cls in classes if cls is not owner]
        if others:
            note += f"; a member of {', '.join(others)}"
        if any((klass, name) in found.without_doc for klass in [owner, *classes]):
            note += "; listed in `:members:`, but autodoc leaves out a member "
            note += "without a docstring unless `:undoc-members:` is given"
        lines.append(f"{label(owner)}.{name} ({note})")
    assert not lines, (
        f"{PAGE.name} does not document these public members:\n" + "\n".join(lines)
    )
