"""Time building the book: a cold build and a rebuild after touching one page.

The sources (``_config.yml``, ``_toc.yml``, ``_ext/``, ``book/``) are copied into a temporary
folder, so the repository's own ``_build`` (and its execution cache) is left alone; the copy is
built with the flags of ``make book``.

- *cold*: no ``_build`` at all: every page is executed and rendered (target: <= 5 min);
- *touch*: one page's modification time changes: Sphinx re-reads it, the execution cache
  (``execute_notebooks: cache``) still holds its outputs, nothing is executed (target: <= 30 s).

Run: ``.venv/bin/python benchmarks/bench_book.py [--page book/ch01-backprop/index.md]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("_config.yml", "_toc.yml", "_ext", "book")
FLAGS = ("--warningiserror", "--nitpick", "--keep-going")
TARGETS = {"cold": 300.0, "touch": 30.0}


def build(root: Path) -> float:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    start = time.perf_counter()
    result = subprocess.run(
        [str(jupyter_book), "build", str(root), *FLAGS], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"jupyter-book build failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="book/intro.md", help="the page to touch")
    page = parser.parse_args().page
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in SOURCES:
            origin = REPO / name
            if origin.is_dir():
                shutil.copytree(origin, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, root / name)
        times = {"cold": build(root)}
        (root / page).touch()
        times["touch"] = build(root)
    pages = len(list((REPO / "book").rglob("*.md")))
    for name, seconds in times.items():
        verdict = "ok" if seconds <= TARGETS[name] else "SLOWER THAN TARGET"
        print(f"{name:<6} build: {seconds:6.1f} s  (target <= {TARGETS[name]:.0f} s, {verdict})")
    print(f"{pages} pages; touched {page}")


if __name__ == "__main__":
    main()
