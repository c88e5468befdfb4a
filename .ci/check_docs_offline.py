"""Checks that the built documentation site reads offline, maths included.

- No page loads a script, a stylesheet or a font from another host
  (`http://`, `https://` or a protocol-relative `//` address): not through
  `<script src>`, `<link href>` (stylesheets, preloads), `@import` or `url()`
  in a `<style>` element or a `style` attribute, nor through `@import` or
  `url()` in the site's own stylesheets that the pages link.
- Every page with maths loads a MathJax script, and that script is a file of
  the build; where it renders to HTML with MathJax's web fonts, the fonts are
  in the build beside it.

    python .ci/check_docs_offline.py docs/_build/html
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_REFERENCE = re.compile(
    r"""@import\s+(?:url\(\s*)?['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)""",
    re.IGNORECASE,
)
# Where MathJax 3's CommonHTML output takes its fonts from, relative to the
# folder of the MathJax script.
CHTML_FONTS = "output/chtml/fonts/woff-v2"


def is_external(address: str) -> bool:
    """An address on another host: http(s)://..., //host/... (data: is not)."""
    return bool(EXTERNAL.match(address))


def css_references(text: str) -> list[str]:
    return [a or b for a, b in CSS_REFERENCE.findall(text)]


def local_file(page: Path, address: str) -> Path:
    """The file a relative address of a page names (query and fragment off)."""
    return (page.parent / unquote(urlsplit(address).path)).resolve()


class Loads(HTMLParser):
    """What a page loads: scripts, linked files, inline styles; and whether
    it has maths (Sphinx marks it with the class `math`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.links: list[tuple[str, str]] = []  # (rel, href)
        self.styles: list[str] = []
        self.has_maths = False
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if "math" in attributes.get("class", "").split():
            self.has_maths = True
        if "style" in attributes:
            self.styles.append(attributes["style"])
        if tag == "script" and attributes.get("src"):
            self.scripts.append(attributes["src"])
        elif tag == "link" and attributes.get("href"):
            self.links.append((attributes.get("rel", "").lower(), attributes["href"]))
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


# Link relations that load something the page uses; the others (next, prev,
# search, index, canonical...) are plain links.
LOADING_RELS = {"stylesheet", "preload", "modulepreload", "icon", "manifest"}


def check_mathjax(page: Path, scripts: list[str], site: Path) -> list[str]:
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    if not mathjax:
        return ["has maths but loads no MathJax script"]
    problems = []
    for address in mathjax:
        if is_external(address):
            continue  # reported with the other external loads
        script = local_file(page, address)
        if not script.is_file() or script.stat().st_size == 0:
            problems.append(f"loads MathJax from {address}, not in the build")
            continue
        if site not in script.parents:
            problems.append(f"loads MathJax from {address}, outside the site")
            continue
        text = script.read_text(encoding="utf-8", errors="replace")
        if CHTML_FONTS in text:
            fonts = script.parent / CHTML_FONTS
            if not any(fonts.glob("*.woff")):
                problems.append(
                    f"loads {address}, whose fonts ({CHTML_FONTS}/ beside it) "
                    "are not in the build"
                )
    return problems


def main(folder: str) -> int:
    site = Path(folder).resolve()
    pages = sorted(site.rglob("*.html"))
    if not pages:
        print(f"FAIL: no HTML pages under {site}")
        return 1
    problems: list[str] = []
    stylesheets: set[Path] = set()
    with_maths = 0
    for page in pages:
        name = page.relative_to(site).as_posix()
        loads = Loads()
        loads.feed(page.read_text(encoding="utf-8"))
        loads.close()
        for address in loads.scripts:
            if is_external(address):
                problems.append(f"{name}: loads the script {address}")
        for rel, address in loads.links:
            if not LOADING_RELS & set(rel.split()):
                continue
            if is_external(address):
                problems.append(f"{name}: loads ({rel}) {address}")
            elif "stylesheet" in rel.split():
                stylesheets.add(local_file(page, address))
        for style in loads.styles:
            for address in css_references(style):
                if is_external(address):
                    problems.append(f"{name}: its styles load {address}")
        if loads.has_maths:
            with_maths += 1
            for problem in check_mathjax(page, loads.scripts, site):
                problems.append(f"{name}: {problem}")
    for stylesheet in sorted(stylesheets):
        if not stylesheet.is_file():
            problems.append(f"the stylesheet {stylesheet} is not in the build")
            continue
        for address in css_references(stylesheet.read_text(encoding="utf-8")):
            if is_external(address):
                inside = stylesheet.resolve().is_relative_to(site.resolve())
                shown = (
                    stylesheet.resolve().relative_to(site.resolve()).as_posix()
                    if inside
                    else str(stylesheet)
                )
                problems.append(f"{shown}: loads {address}")

    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print(
            f"OK: {len(pages)} pages and {len(stylesheets)} stylesheets load "
            f"nothing from another host; the {with_maths} pages with maths load "
            "a MathJax that is in the build."
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
