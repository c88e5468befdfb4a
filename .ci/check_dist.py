"""Checks the sdist and the wheel that `python -m build` wrote into a folder.

- The wheel holds the package exactly (every file of `clr_optimizers/` in
  git, `py.typed` and the type stubs among them) and its licence, and nothing
  else: no tests, benchmarks, notebooks or docs.
- The sdist holds the package, the licence, the README and pyproject.toml.
- Both are of the version pyproject.toml declares (the wheel's name and
  metadata, the sdist's name), release or development.
- The wheel `python -m build` made from the sdist equals, file for file, a
  wheel built straight from the checkout: the sdist loses nothing.

    python .ci/check_dist.py dist
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tracked(folder: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", folder],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def wheel_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


def main(dist: str) -> int:
    folder = Path(dist)
    (wheel,) = folder.glob("*.whl")
    (sdist,) = folder.glob("*.tar.gz")
    problems = []

    files = wheel_files(wheel)
    info = next(n.split("/")[0] for n in files if n.endswith(".dist-info/METADATA"))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    metadata = files[f"{info}/METADATA"].decode().splitlines()
    if f"Version: {version}" not in metadata:
        problems.append(f"the wheel's metadata is not of version {version}")
    for artifact, name in (
        (wheel, f"clr_optimizers-{version}-py3-none-any.whl"),
        (sdist, f"clr_optimizers-{version}.tar.gz"),
    ):
        if artifact.name != name:
            problems.append(f"{artifact.name} is not {name}, the declared version")
    package = {n for n in files if not n.startswith(info + "/")}
    expected = {n for n in tracked("clr_optimizers") if not n.endswith(".pyc")}
    if package != expected:
        problems.append(
            "the wheel's package differs from git: "
            f"missing {sorted(expected - package)}, extra {sorted(package - expected)}"
        )
    for required in ("clr_optimizers/py.typed", "clr_optimizers/optimizers.pyi"):
        if required not in files:
            problems.append(f"the wheel lacks {required}")
    if f"{info}/licenses/LICENSE" not in files:
        problems.append("the wheel lacks its licence (dist-info/licenses/LICENSE)")

    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(top + "/") for name in archive.getnames()}
    for required in ("LICENSE", "README.md", "pyproject.toml", *expected):
        if required not in names:
            problems.append(f"the sdist lacks {required}")

    with tempfile.TemporaryDirectory() as direct:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", direct, str(ROOT)],
            check=True,
            capture_output=True,
        )
        (straight,) = Path(direct).glob("*.whl")
        if wheel_files(straight) != files:
            problems.append(
                "the wheel built from the sdist differs from one built from the "
                "checkout"
            )

    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print(
            f"OK: version {version}: {wheel.name} ({len(package)} package files and "
            "the licence) and "
            f"{sdist.name}; the sdist builds the same wheel."
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
