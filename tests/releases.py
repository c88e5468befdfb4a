"""The releases `CHANGELOG.md` records, and the floors `.ci/floors.txt` holds:
what the tests of the release, the saved files and the benchmark's figures
compare with."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\S+))?$", re.MULTILINE)
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.dev(\d+))?$")


def parse_version(text):
    """(major, minor, patch, dev): `dev` is None for a release."""
    match = VERSION.match(text)
    if match is None:
        raise ValueError(f"not a version of this project: {text!r}")
    major, minor, patch, dev = match.groups()
    return int(major), int(minor), int(patch), None if dev is None else int(dev)


def changelog_sections():
    """[(name, date or None, body)] in the order of the file."""
    text = (ROOT / "CHANGELOG.md").read_text()
    matches = list(SECTION.finditer(text))
    return [
        (
            m["name"],
            m["date"],
            text[m.end() : matches[i + 1].start() if i + 1 < len(matches) else None],
        )
        for i, m in enumerate(matches)
    ]


def latest_release():
    """The newest version with a dated section in the CHANGELOG."""
    return next(name for name, date, _ in changelog_sections() if date is not None)


def floors():
    """{distribution: version} from `.ci/floors.txt`."""
    pins = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version
    return pins
