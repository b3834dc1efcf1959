"""The course in a real JupyterLab, driven in Chromium as a student would use it: the fixtures.

A JupyterLab server of the course's environment runs on 127.0.0.1 over a folder holding every
book page as a notebook (what the book's download button gives: the MyST page converted by
jupytext), the released homework notebooks and a completed copy of each. In it:

- every page with a slider runs top to bottom (*Run All*) with no error output and no widget
  error, and each of its sliders, moved with the keyboard, changes the picture;
- one page per chapter shows no MyST markup raw (jupyterlab-myst renders it);
- every homework notebook runs, and its cells fail only with "not implemented yet"
  (``NotImplementedError``, the blanks left for the student);
- nbgrader's *Validate* button reports success on a completed copy of every homework.

The tests are in ``test_lab_pages.py`` and ``test_lab_homework.py`` (two xdist groups, so that
two workers share them, each with its own server). The server's settings folder switches off the
news and update checks (no network), and ``expose_app_in_browser`` lets the test wait on the
notebook's model rather than guess from pixels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jupytext
import nbformat
import pytest

from autograder.notebooks import read_source, source_path
from autograder.splice import submission

REPO = Path(__file__).resolve().parents[2]
TOKEN = "course-lab-test"
HOMEWORK = sorted(p.name for p in (REPO / "exercises").iterdir() if p.is_dir())
SLIDER_PAGES = sorted(
    str(page.relative_to(REPO).with_suffix(".ipynb"))
    for page in (REPO / "book").rglob("*.md")
    if "slider_figure(" in page.read_text()
)
# Per chapter, its opening page and its summary (where the questions hide their answers in
# admonitions): between them every role and directive the book uses.
CHAPTER_PAGES = sorted(
    str(page.relative_to(REPO).with_suffix(".ipynb"))
    for chapter in (REPO / "book").glob("ch*")
    for page in (chapter / "index.md", chapter / "summary.md")
    if page.is_file()
)
# MyST markup that must never reach the reader as text: roles (`{eq}`x``), directive fences
# (```{note}, :::{dropdown}) and labels ((ch2-label)=).
RAW_MYST = re.compile(r"\{[a-z][a-z:-]*\}`|```\{|:::\{|^\([\w-]+\)=$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lab_folder(root: Path) -> None:
    """The book as notebooks, the releases, and a completed copy of each homework."""
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build"))
    for page in (root / "book").rglob("*.md"):
        jupytext.write(jupytext.read(page), page.with_suffix(".ipynb"))
        page.unlink()
    shutil.copytree(REPO / "exercises", root / "exercises")
    for assignment in HOMEWORK:
        release = nbformat.read(root / "exercises" / assignment / f"{assignment}.ipynb", 4)
        source = read_source(source_path(REPO / "solutions", assignment))
        folder = root / "completed" / assignment
        folder.mkdir(parents=True)
        nbformat.write(submission(release, source, {}), folder / f"{assignment}.ipynb")
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a JupyterLab server on 127.0.0.1; stopped, with its kernels, at the end."""
    root = tmp_path_factory.mktemp("lab")
    _lab_folder(root)
    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(root),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "PYTHONPATH": str(REPO),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("MINIDL_BOOK_BUILD", None)
    command = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
    ]
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield base
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    log.close()
    left = subprocess.run(["pgrep", "-g", str(server.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"processes of the lab left running: {left.stdout}"


class Notebook:
    """A notebook open in JupyterLab, reached through its tab and its model."""

    def __init__(self, page, path: str):
        self.page = page
        self.path = path

    def evaluate(self, body: str, argument=None):
        """Run ``body`` with ``panel`` (the notebook's panel) and ``arg`` in scope."""
        return self.page.evaluate(
            f"([arg]) => {{ const panel = window.jupyterapp.shell.currentWidget; {body} }}",
            [argument],
        )

    def wait_idle(self, timeout_s: float = 300) -> None:
        """Until the kernel has started, is idle, and no cell is queued or running."""
        self.page.wait_for_function(
            """() => {
                const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = panel && panel.sessionContext && panel.sessionContext.session
                    && panel.sessionContext.session.kernel;
                if (!kernel || kernel.status !== "idle") return false;
                const prompts = panel.content.node.querySelectorAll(".jp-InputPrompt");
                return ![...prompts].some((p) => p.textContent.includes("*"));
            }""",
            timeout=timeout_s * 1000,
            polling=250,
        )

    def run_all(self) -> None:
        """*Run All*, and go on below every cell that stopped the run by raising."""
        clear = "notebook:clear-all-cell-outputs"  # execution counts too: every cell is unrun
        self.evaluate("return window.jupyterapp.commands.execute(arg);", clear)
        ran = set()
        while (index := self.first_unrun_cell()) is not None:
            assert index not in ran, f"{self.path}: cell {index} did not run"
            ran.add(index)
            self.run_from(index)

    def run_from(self, index: int) -> None:
        """Run cell ``index`` and every cell below it, until the kernel is done with them."""
        # The command's promise is not awaited: when a cell raises, JupyterLab may leave it
        # unsettled and drop it, and Playwright fails ("Resulting promise was garbage collected").
        self.evaluate(
            "panel.content.activeCellIndex = arg;"
            "window.jupyterapp.commands.execute('notebook:run-all-below');",
            index,
        )
        self.page.wait_for_function(
            """(index) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
                const prompt = cell.node.querySelector(".jp-InputPrompt");
                return cell.model.executionCount !== null || prompt.textContent.includes("*");
            }""",
            arg=index,
            timeout=120_000,
            polling=100,
        )
        self.wait_idle()

    def first_unrun_cell(self) -> int | None:
        """The first code cell never run, if an error stopped the run before it."""
        return self.evaluate(
            """const cells = [...panel.content.model.cells];
            const index = cells.findIndex((c) => c.type === "code"
                && c.sharedModel.getSource().trim() !== "" && c.executionCount === null);
            return index < 0 ? null : index;"""
        )

    def errors(self) -> list[dict]:
        """The error outputs of the notebook's cells: ``{"cell", "ename", "evalue"}``."""
        return self.evaluate(
            """const found = [];
            [...panel.content.model.cells].forEach((cell, index) => {
                if (cell.type !== "code") return;
                for (const output of cell.outputs.toJSON()) {
                    if (output.output_type === "error") {
                        found.push({cell: index, ename: output.ename, evalue: output.evalue});
                    } else if (output.output_type === "stream" && output.name === "stderr"
                               && String(output.text).includes("Traceback")) {
                        found.push({cell: index, ename: "stderr", evalue: String(output.text)});
                    }
                }
            });
            return found;"""
        )


@pytest.fixture
def open_notebook(chromium, lab: str):
    """``open_notebook(path)``: a fresh tab with ``path`` open and its kernel ready."""
    contexts, console = [], []

    def opener(path: str, *, front_end: str = "lab/tree") -> Notebook:
        """``front_end``: ``lab/tree`` (JupyterLab) or ``notebooks`` (Notebook 7)."""
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and console.append(m.text))
        page.on("pageerror", lambda error: console.append(str(error)))
        if front_end == "lab/tree":  # a workspace of its own: JupyterLab would reopen, and
            # start a kernel for, every notebook an earlier tab had open in a shared one
            front_end = f"lab/workspaces/test-{len(contexts)}-{time.monotonic_ns()}/tree"
        page.goto(f"{lab}/{front_end}/{path}?token={TOKEN}", wait_until="load")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        notebook = Notebook(page, path)
        notebook.wait_idle()
        notebook.console = console
        return notebook

    yield opener
    for context in contexts:
        for page in context.pages:  # stop the kernel: the server would keep it running
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        context.close()
