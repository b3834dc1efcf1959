"""A class of Homework 1 on a real JupyterHub, driven in Chromium as each student.

One run, in order (the tests share the session's hub and depend on the steps before them):
the instructor releases hw1; alice (correct answers) and bob (the ``sigmoid_plus`` mistake) log
in, fetch hw1 in the Assignments tab, answer and submit from the tab; the deadline passes; bob
submits again (his notebook reset: no answers), dave submits late and correct, erin without
answers and fay without the assignment's notebook (these three from a terminal, ``nbgrader
submit``); the instructor collects, grades and returns; each student reads their own feedback in
the tab. Then: nobody reads another's work, the outsider cannot fetch, a chapter page's live
slider changes its figure, and the hub stops leaving no process behind.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import pytest
from hubclass import ASSIGNMENT, REPO, HubClass

from autograder import hub
from autograder.notebooks import grade_id, is_test, read_source, source_path
from autograder.splice import parse_cells, submission

# In the "hostile" group with every test that grades as a normal user: the hub makes
# solutions/ and tests/ owner-only while its students are logged in, which such a user could
# not grade through.
pytestmark = [pytest.mark.hub, pytest.mark.slow, pytest.mark.xdist_group("hostile")]

MISTAKE = REPO / "tests" / "autograder" / "autograder_cases" / ASSIGNMENT / "sigmoid_plus.cells"
CHAPTER_PAGE = REPO / "book" / "ch02-gradient-descent" / "quadratic-1d.md"
TIMEOUT_MS = 120_000
KERNEL_TIMEOUT_MS = 300_000
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
POINTS = {grade_id(c): c.metadata.nbgrader["points"] for c in RELEASE.cells if is_test(c)}
MAX_SCORE = sum(POINTS.values())


def _solved(mistake: Path | None = None) -> dict:
    """The release answered correctly, or with the mistakes of a ``.cells`` file, as JSON."""
    source = read_source(source_path(REPO / "solutions", ASSIGNMENT))
    replacements, blank = parse_cells(mistake.read_text()) if mistake else ({}, False)
    return json.loads(nbformat.writes(submission(RELEASE, source, replacements, blank=blank)))


def _mistake_points() -> float:
    failed = re.findall(r"^# expect: (\S+)", MISTAKE.read_text(), re.MULTILINE)
    return sum(POINTS[name] for name in failed)


# --- the browser side ----------------------------------------------------------------------


def start_login(chromium, hub_class: HubClass, role: str):
    """A fresh browser context that has sent ``role``'s login (the hub starts their server)."""
    name = hub_class.user(role)
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{hub_class.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub_class.passwords[name])
    page.click("#login_submit")
    return page


def wait_for_lab(page, name: str) -> None:
    page.wait_for_url(f"**/user/{name}/lab**")
    page.wait_for_selector("#jp-main-dock-panel")


def open_assignments(page):
    """The Assignments tab (nbgrader's menu, Assignment List), freshly listed."""
    page.get_by_text("Nbgrader", exact=True).click()
    page.get_by_text("Assignment List", exact=True).click()
    page.wait_for_selector("#nbgrader-assignment-list")
    page.click("#nbgrader-assignment-list #refresh_assignments_list")
    page.wait_for_selector("#released_assignments_list_loading", state="hidden")
    return page.locator("#nbgrader-assignment-list")


def fetch(page) -> None:
    tab = open_assignments(page)
    row = tab.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
    row.get_by_role("button", name="Fetch").click()
    tab.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for()


def save_notebook(page, hub_class: HubClass, role: str, content: dict) -> None:
    """Write the student's answers into the fetched notebook through their own JupyterLab's
    contents API (what JupyterLab's save does), then open it in JupyterLab."""
    name = hub_class.user(role)
    status = page.evaluate(
        """async ([url, content]) => {
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/)[1];
            const response = await fetch(url, {
                method: 'PUT',
                headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
                body: JSON.stringify({type: 'notebook', format: 'json', content}),
            });
            return response.status;
        }""",
        [f"/user/{name}/api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", content],
    )
    assert status == 200, status


def submit(page) -> None:
    tab = open_assignments(page)
    before = tab.locator("#submitted_assignments_list .list_item").count()
    row = tab.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first
    row.get_by_role("button", name="Submit").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#submitted_assignments_list .list_item').length > n",
        arg=before,
    )


def read_feedback(page) -> str:
    """Fetch the returned feedback in the Assignments tab, follow its "view feedback" link to
    the fetched page in the file browser and open it in JupyterLab: the page's text."""
    tab = open_assignments(page)
    submitted = tab.locator("#submitted_assignments_list")
    submitted.get_by_role("button", name="Fetch Feedback").first.click()
    link = submitted.get_by_text("(view feedback)").first
    link.wait_for()
    link.click()
    page.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.html").dblclick()
    body = page.frame_locator(".jp-HTMLViewer iframe").locator("body")
    body.get_by_text("Score:").wait_for()
    return body.inner_text()


# --- the terminal side ---------------------------------------------------------------------


def nbgrader_as(hub_class: HubClass, role: str, *args: str) -> subprocess.CompletedProcess:
    """One of nbgrader's student commands in the student's terminal on the hub."""
    env = hub.singleuser_environment(hub_class.course, hub_class.user(role))
    return hub_class.as_user(
        role,
        *(f"{k}={v}" for k, v in env.items()),
        str(Path(sys.executable).parent / "nbgrader"),
        *args,
    )


def read_grades(hub_class: HubClass) -> dict[str, dict[str, str]]:
    path = hub.grading_dir(hub_class.course, ASSIGNMENT) / "grades.csv"
    with path.open() as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def set_deadline(hub_class: HubClass, deadline: str) -> None:
    text = hub_class.class_file.read_text()
    hub_class.class_file.write_text(text + f'[deadlines]\n"{ASSIGNMENT}" = {deadline}\n')


# --- the class ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(chromium, hub_class: HubClass):
    """alice's and bob's browser sessions, logged in."""
    sessions = {role: start_login(chromium, hub_class, role) for role in ("alice", "bob")}
    for role, page in sessions.items():  # both servers start at once
        wait_for_lab(page, hub_class.user(role))
    yield sessions
    for page in sessions.values():
        if not page.is_closed():
            page.context.close()


def test_release_holds_only_the_exercise(hub_class: HubClass):
    run = hub_class.command("release", ASSIGNMENT)
    released = Path(run.stdout.split("released ", 1)[1].strip())
    assert released.read_bytes() == (REPO / "exercises" / ASSIGNMENT / released.name).read_bytes()
    exchanged = "".join(p.read_text() for p in released.parent.rglob("*") if p.is_file())
    assert "BEGIN SOLUTION" not in exchanged and "HIDDEN TESTS" not in exchanged


def test_students_fetch_answer_and_submit_in_the_assignments_tab(hub_class, pages):
    for role, answers in (("alice", _solved()), ("bob", _solved(MISTAKE))):
        page = pages[role]
        fetch(page)
        home = Path(f"/home/{hub_class.user(role)}")
        assert (home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
        save_notebook(page, hub_class, role, answers)
        submit(page)
    # The deadline passes after these submissions: one second after bob's first one.
    time.sleep(1.1)
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    set_deadline(hub_class, deadline)
    time.sleep(1.1)
    # bob submits again, late, with his notebook reset: he is graded on his on-time one.
    save_notebook(pages["bob"], hub_class, "bob", json.loads(nbformat.writes(RELEASE)))
    submit(pages["bob"])


def test_late_empty_and_wrong_submissions_from_a_terminal(hub_class: HubClass):
    roles = ("dave", "erin", "fay")
    with ThreadPoolExecutor(len(roles)) as terminals:
        for fetched in terminals.map(
            lambda role: nbgrader_as(hub_class, role, "fetch_assignment", ASSIGNMENT), roles
        ):
            assert fetched.returncode == 0, fetched.stderr
    notebook = f"/home/{hub_class.user('dave')}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    Path(notebook).write_text(json.dumps(_solved()))  # dave: correct, after the deadline
    fay = Path(f"/home/{hub_class.user('fay')}/{ASSIGNMENT}")
    (fay / f"{ASSIGNMENT}.ipynb").rename(fay / "my-answers.ipynb")  # fay: not the notebook
    with ThreadPoolExecutor(len(roles)) as terminals:
        for submitted in terminals.map(
            lambda role: nbgrader_as(hub_class, role, "submit", ASSIGNMENT), roles
        ):
            assert submitted.returncode == 0, submitted.stderr


def test_outsider_cannot_log_in_or_fetch(chromium, hub_class: HubClass):
    page = chromium.new_page()
    name = hub_class.user("outsider")
    page.goto(f"{hub_class.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub_class.passwords[name])
    page.click("#login_submit")
    page.wait_for_load_state()
    assert f"/user/{name}/" not in page.url
    page.close()
    # From a terminal: the exchange's folder of the course is closed to them.
    fetched = nbgrader_as(hub_class, "outsider", "fetch_assignment", ASSIGNMENT)
    assert fetched.returncode != 0
    assert "Assignment not found" in fetched.stderr
    assert not Path(f"/home/{name}/{ASSIGNMENT}").exists()


def test_instructor_collects_grades_and_returns(hub_class: HubClass):
    collected = hub_class.command("collect", ASSIGNMENT)
    assert "collected 5 submissions" in collected.stdout, collected.stdout
    hub_class.command("grade", ASSIGNMENT, "--workers", "2")
    grades = read_grades(hub_class)
    alice, bob, dave = (grades[hub_class.user(r)] for r in ("alice", "bob", "dave"))
    erin, fay = grades[hub_class.user("erin")], grades[hub_class.user("fay")]
    assert (float(alice["score"]), alice["status"], float(alice["penalty"])) == (
        MAX_SCORE,
        "graded",
        0,
    )
    # bob: his on-time submission (the mistake), not his later, empty one.
    assert float(bob["score"]) == MAX_SCORE - _mistake_points()
    assert float(bob["penalty"]) == 0 and float(bob["hours_late"]) == 0
    # dave: correct, a few seconds late: one started hour at 10 % of the score.
    policy = hub_class.course.late_policy
    assert 0 < float(dave["hours_late"]) < 1
    assert float(dave["penalty"]) == pytest.approx(policy.rate)  # a fraction, as the grader's
    assert float(dave["score"]) == pytest.approx(MAX_SCORE * (1 - policy.rate))
    dave_page = hub_class.course.course_dir / "feedback" / hub_class.user("dave") / ASSIGNMENT
    late_note = r"Submitted (\d+ s|0 h [1-9]\d* min) after the deadline"  # never "0 h 0 min"
    assert re.search(late_note, (dave_page / f"{ASSIGNMENT}.html").read_text())
    assert (erin["status"], float(erin["score"])) == ("no answers", 0)
    assert (fay["status"], float(fay["score"])) == ("no notebook", 0)
    returned = hub_class.command("return", ASSIGNMENT)
    assert "returned the feedback of 5 students" in returned.stdout


def test_each_student_reads_their_own_feedback_in_the_tab(hub_class, pages):
    alice = read_feedback(pages["alice"])
    assert f"feedback for {hub_class.user('alice')}" in alice
    assert f"Score: {MAX_SCORE:g} / {MAX_SCORE:g}" in alice
    bob = read_feedback(pages["bob"])
    assert f"feedback for {hub_class.user('bob')}" in bob
    assert f"Score: {MAX_SCORE - _mistake_points():g} / {MAX_SCORE:g}" in bob
    assert "with a minus sign" in bob  # the hint of the known mistake
    dave = nbgrader_as(hub_class, "dave", "fetch_feedback", ASSIGNMENT)
    assert dave.returncode == 0, dave.stderr
    fetched = Path(f"/home/{hub_class.user('dave')}/{ASSIGNMENT}/feedback")
    (page_of_dave,) = fetched.rglob(f"{ASSIGNMENT}.html")
    text = page_of_dave.read_text()
    assert "after the deadline" in text
    assert hub_class.course.late_policy.describe() in text


def test_nobody_reads_what_is_not_theirs(hub_class: HubClass, pages):
    alice_home = Path(f"/home/{hub_class.user('alice')}")
    exchange = hub_class.course.exchange / hub_class.course.course_id
    secrets_of_others = [
        alice_home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",  # her notebook
        alice_home / ASSIGNMENT / "feedback",  # her feedback
        exchange / "inbound",  # everyone's submissions
        exchange / "feedback",  # everyone's returned feedback (by hash)
        hub_class.course.course_dir / "submitted",  # the instructor's course directory
        REPO / "solutions" / ASSIGNMENT,  # the solutions and hidden tests
    ]
    probe = (
        "import os, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        (os.listdir if os.path.isdir(p) else open)(p)\n"
        "        print('OPENED', p)\n"
        "    except PermissionError:\n"
        "        pass\n"
    )
    bob = hub_class.as_user("bob", sys.executable, "-c", probe, *map(str, secrets_of_others))
    assert bob.returncode == 0, bob.stderr
    assert bob.stdout == ""
    # bob's browser session cannot reach alice's server.
    response = pages["bob"].request.get(
        f"{hub_class.url}/user/{hub_class.user('alice')}/api/contents/{ASSIGNMENT}"
    )
    assert response.status in (403, 404) or "/hub/" in response.url


def test_a_chapter_page_as_a_notebook_has_a_live_slider(hub_class, pages):
    """bob opens a chapter page as a notebook (the book's download), runs it and moves the
    slider with the keyboard: the figure changes."""
    page = pages["bob"]
    name = hub_class.user("bob")
    notebook = Path(f"/home/{name}/{CHAPTER_PAGE.stem}.ipynb")
    jupytext.write(jupytext.read(CHAPTER_PAGE), notebook)
    subprocess.run(["chown", f"{name}:", str(notebook)], check=True)
    page.goto(f"{hub_class.url}/user/{name}/lab/tree/{notebook.name}")
    page.wait_for_selector(".jp-Notebook")
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=KERNEL_TIMEOUT_MS)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
    # The page's cells render every frame of the figure first (slow on a loaded machine).
    image = page.locator("img.widget-image").first
    image.wait_for(timeout=KERNEL_TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('img.widget-image').src !== ''")
    before = image.get_attribute("src")
    page.locator(".widget-slider .noUi-handle").first.focus()
    page.keyboard.press("End")  # the arrows would work too in JupyterLab; End in any front end
    page.wait_for_function(
        "before => document.querySelector('img.widget-image').getAttribute('src') !== before",
        arg=before,
        timeout=KERNEL_TIMEOUT_MS,
    )


def test_the_hub_stops_leaving_no_process_behind(hub_class: HubClass, pages):
    for page in pages.values():
        page.context.close()
    hub_class.stop()
    deadline = time.monotonic() + 30
    while hub_class.processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hub_class.processes() == []
