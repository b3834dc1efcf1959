"""Time building the book: a cold build and a rebuild after touching one page.

The sources (``_config.yml``, ``_toc.yml``, ``_ext/``, ``book/`` and the ``exercises/`` the
homework pages link to) are copied into a temporary folder, so the repository's own ``_build``
(and its execution cache) is left alone; the copy is built as ``make book`` builds it: the
student kit first (``python -m autograder kit``), then the book with its flags.

- *cold*: no ``_build`` at all: the kit is built and every page is executed and rendered
  (target: <= 5 min);
- *prose*: a sentence is added to a chapter page: Sphinx re-reads it, the execution cache
  (``execute_notebooks: cache``, keyed on the code cells) still holds its outputs, nothing is
  executed (target: <= 30 s);
- *code*: a line is added to the page's first code cell: the page is executed again, and only
  that page (target: <= 30 s plus what the page's own code takes; printed for information).

Run: ``.venv/bin/python benchmarks/bench_book.py [--page book/ch02-gradient-descent/rates.md]``.
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
SOURCES = ("_config.yml", "_toc.yml", "_ext", "book", "exercises")
FLAGS = ("--warningiserror", "--nitpick", "--keep-going")
TARGETS = {"cold": 300.0, "prose": 30.0}


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


def build_kit(out: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "kit", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"the kit build failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return time.perf_counter() - start


def add_prose(page: Path) -> None:
    page.write_text(page.read_text() + "\nA sentence added to time a rebuild.\n")


def add_code(page: Path) -> None:
    """Add a comment line at the end of the page's first code cell."""
    lines = page.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("```{code-cell}"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    lines.insert(end, "# a line added to time a rebuild\n")
    page.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--page", default="book/ch02-gradient-descent/rates.md", help="the page to edit"
    )
    page = parser.parse_args().page
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in SOURCES:
            origin = REPO / name
            if origin.is_dir():
                shutil.copytree(origin, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, root / name)
        times = {"cold": build_kit(root / "_build" / "kit") + build(root)}
        add_prose(root / page)
        times["prose"] = build(root)
        add_code(root / page)
        times["code"] = build(root)
    pages = len(list((REPO / "book").rglob("*.md")))
    for name, seconds in times.items():
        if name in TARGETS:
            verdict = "ok" if seconds <= TARGETS[name] else "SLOWER THAN TARGET"
            target = f"target <= {TARGETS[name]:.0f} s, {verdict}"
        else:
            target = "re-executes the page"
        print(f"{name:<6} build: {seconds:6.1f} s  ({target})")
    print(f"{pages} pages; edited {page}")


if __name__ == "__main__":
    main()
