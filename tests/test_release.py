"""The version, the CHANGELOG and what the docs tell a user to install agree:
a release has a dated section and no unreleased changes; between releases
the version is the next one's `.devN` and the changes are under
"Unreleased"; the pins in the README and on the getting-started page name
the latest release, and the "tested with" table names the floors job's
versions."""

import datetime
import re
import tomllib

from releases import ROOT, changelog_sections, floors, latest_release, parse_version

import clr_optimizers


def test_the_version_and_the_changelog_agree():
    version = parse_version(clr_optimizers.__version__)
    sections = changelog_sections()
    released = [(name, date) for name, date, _ in sections if date is not None]
    assert [name for name, date, _ in sections if date is None] in (
        [],
        ["Unreleased"],
    ), "every section but Unreleased has a date"
    # Newest first, versions and dates both.
    assert [parse_version(n) for n, _ in released] == sorted(
        (parse_version(n) for n, _ in released), reverse=True
    )
    dates = [datetime.date.fromisoformat(d) for _, d in released]
    assert dates == sorted(dates, reverse=True)
    latest = parse_version(latest_release())
    unreleased = [body for name, _, body in sections if name == "Unreleased"]
    if version[3] is None:  # a release: its section is the newest
        assert version == latest, (clr_optimizers.__version__, latest_release())
        assert not any(body.strip() for body in unreleased), (
            "a release ships no Unreleased changes: date them under its number"
        )
    else:  # between releases: the next version, with an Unreleased section
        assert version[:3] > latest[:3], (clr_optimizers.__version__, latest)
        assert sections[0][0] == "Unreleased"


def test_the_pins_name_the_latest_release():
    latest = latest_release()
    for page in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        pins = re.findall(r"clr-optimizers(?:\[[\w,]+\])?==([\w.]+)", page.read_text())
        assert pins, page
        assert set(pins) == {latest}, (page.name, pins)


def test_the_tested_with_table_names_the_floors():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- tested-with:start -->")[1]
    table = table.split("<!-- tested-with:end -->")[0]
    rows = {
        cells[0]: cells[1:]
        for line in table.strip().splitlines()[2:]
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert "Python 3.11" in table.splitlines()[1]
    pins = floors()
    for backend, distribution in (("TensorFlow", "tensorflow"), ("JAX", "jax")):
        oldest = rows[backend][0]
        for name in (distribution, "keras", "numpy"):
            assert f"{name} {pins[name]}" in oldest, (backend, name, oldest)
    # The floors job installs pyproject.toml's floors (the first release of
    # each: TensorFlow has no 2.16.0).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"]]
    for extra in ("tensorflow", "jax"):
        declared += project["optional-dependencies"][extra]
    for requirement in declared:
        name, floor = requirement.split(">=")
        assert f"{pins[name]}.".startswith(f"{floor}."), (name, floor, pins[name])
