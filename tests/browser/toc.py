"""The pages the browser suite walks: the book's table of contents, then its fixture page
(the test modules import these from here, not from ``conftest``: another suite's conftest may
hold that module name)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURE_PAGE = "book/browser-fixture-sliders"


def toc_files(toc: dict) -> list[str]:
    """Every ``file`` of a Jupyter Book ``_toc.yml`` (root first), in reading order."""
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk(toc.get("parts", []) + toc.get("chapters", []) + toc.get("sections", []))
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in files]


def book_pages() -> list[str]:
    """The pages the browser suite walks: the real book's toc, then the fixture page."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [*toc_files(toc), FIXTURE_PAGE]
