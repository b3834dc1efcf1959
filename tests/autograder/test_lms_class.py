"""The demo class of Homework 1 handed in through Canvas and through Moodle grades to the same
points as the plain folder; Canvas's late marker goes through the late policy; the grades go
back into each LMS's gradebook file."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import pytest
from gradeclass import REPO, autograder, read_grades
from lmsfixtures import Entry, canvas_file, moodle_file, write_zip

from autograder.demo import build_demo_class

pytestmark = [pytest.mark.autograder, pytest.mark.slow, pytest.mark.xdist_group("lms")]

A = "hw1-backprop"
CANVAS = {  # demo student -> (sortable name, user id, late)
    "alice": ("Müller-Lüdenscheidt, Alice", 104, False),
    "bob": ("O'Brien, Bob Seán", 2231, True),
    "carol": ("van der Berg, Carol Anna", 35, False),
    "dave": ("Wolfeschlegelsteinhausenbergerdorff Sr., Dave Blaine", 900017, False),
    "erin": ("Nguyễn, Erin Thị", 77, False),
}
MOODLE = {  # demo student -> (full name, participant id)
    "alice": ("Alice Müller-Lüdenscheidt", 1234567),
    "bob": ("Bob Seán O'Brien", 1234568),
    "carol": ("Carol Anna van der Berg", 1234569),
    "dave": ("Dave Blaine Wolfeschlegelsteinhausenbergerdorff Sr.", 1234570),
    "erin": ("Participant", 1234571),
}
POLICY = '[late]\npolicy = "per-day"\nrate = 0.2\n'


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lms-class")
    plain = build_demo_class(tmp / "plain")
    blank = (REPO / "exercises" / A / f"{A}.ipynb").read_bytes()
    notebooks = {p.stem: p.read_bytes() for p in plain.glob("*.ipynb")}
    canvas = [
        Entry(canvas_file(name, user, 8000 + user, f"{A}.ipynb", late=late), notebooks[student])
        for student, (name, user, late) in CANVAS.items()
    ]
    name, user, _ = CANVAS["alice"]
    canvas += [  # alice handed in the blank notebook first, and a PDF
        Entry(canvas_file(name, user, 10, f"{A}.ipynb"), blank),
        Entry(canvas_file(name, user, 11, "answers.pdf"), b"%PDF-1.7"),
    ]
    moodle = [
        Entry(moodle_file(name, pid, f"{A}.ipynb"), notebooks[student], (2026, 10, 12, 12, 0, 0))
        for student, (name, pid) in MOODLE.items()
    ]
    name, pid = MOODLE["carol"]
    moodle += [  # carol's older second notebook, and an online-text answer
        Entry(moodle_file(name, pid, "scratch.ipynb"), blank, (2026, 10, 1, 12, 0, 0)),
        Entry(f"{name}_{pid}_assignsubmission_onlinetext/onlinetext.html", b"<p>done</p>"),
    ]
    course = tmp / "course.toml"
    course.write_text(POLICY)
    runs = {}
    for label, submissions in (
        ("plain", plain),
        ("canvas", write_zip(tmp / "canvas.zip", canvas)),
        ("moodle", write_zip(tmp / "moodle.zip", moodle)),
    ):
        out = tmp / f"out-{label}"
        run = autograder("grade", A, submissions, "--out", out, "--course", course)
        runs[label] = (out, read_grades(out), run.stdout)
    return runs


def test_canvas_and_moodle_downloads_grade_to_the_plain_folders_points(graded):
    _, plain, _ = graded["plain"]
    _, canvas, _ = graded["canvas"]
    _, moodle, _ = graded["moodle"]
    tests = [c for c in plain["alice"] if c.endswith(("_selfcheck", "_hidden"))]
    assert tests
    for student, (_, user, _) in CANVAS.items():
        for test in (*tests, "status", "max_score"):
            assert canvas[str(user)][test] == plain[student][test], (student, test)
    for student, (_, pid) in MOODLE.items():
        for test in (*tests, "status", "max_score", "score"):
            assert moodle[str(pid)][test] == plain[student][test], (student, test)
        assert moodle[str(pid)]["late"] == ""  # Moodle's download has no late marker


def test_canvas_late_marker_goes_through_the_late_policy(graded):
    _, plain, _ = graded["plain"]
    out, canvas, _ = graded["canvas"]
    bob = canvas[str(CANVAS["bob"][1])]
    assert (bob["late"], bob["penalty"]) == ("1", "0.2")  # one hour: one day started
    assert float(bob["score"]) == pytest.approx(0.8 * float(plain["bob"]["score"]))
    alice = canvas[str(CANVAS["alice"][1])]
    assert (alice["late"], alice["penalty"], alice["score"]) == ("0", "0", plain["alice"]["score"])
    page = (out / "feedback" / f"{CANVAS['bob'][1]}.html").read_text()
    assert "obrienbobseán (2231)" in page and "marked late" in page and "20%" in page


def test_a_new_late_policy_reaches_stored_grades_without_running_a_notebook(graded, tmp_path):
    """The penalty is the instructor's side's: graded again under another policy, every stored
    result is reused and only the penalty changes, in grades.csv and on the late student's
    feedback page (the others' pages are left as they were)."""
    out, canvas, _ = graded["canvas"]
    again = tmp_path / "out"
    shutil.copytree(out, again)
    course = tmp_path / "course.toml"
    course.write_text('[late]\npolicy = "zero-after-cutoff"\ncutoff_hours = 0\n')
    alice_page = again / "feedback" / f"{CANVAS['alice'][1]}.html"
    untouched = alice_page.stat().st_mtime_ns
    run = autograder("grade", A, out.parent / "canvas.zip", "--out", again, "--course", course)
    assert "0 graded now, 5 unchanged" in run.stdout
    now = read_grades(again)
    bob = str(CANVAS["bob"][1])
    assert float(canvas[bob]["score"]) > 0
    assert (now[bob]["late"], now[bob]["penalty"], now[bob]["score"]) == ("1", "1", "0")
    for user in now.keys() - {bob}:
        assert now[user] == canvas[user]
    page = (again / "feedback" / f"{bob}.html").read_text()
    assert "takes 100% of your score" in page and "20%" not in page
    assert alice_page.stat().st_mtime_ns == untouched


def test_what_was_not_graded_is_reported(graded):
    _, _, canvas_stdout = graded["canvas"]
    _, _, moodle_stdout = graded["moodle"]
    assert "read as a Canvas download" in canvas_stdout
    assert "answers.pdf: not a notebook" in canvas_stdout
    assert f"{A}.ipynb: an earlier or second notebook" in canvas_stdout
    assert "read as a Moodle download" in moodle_stdout
    assert "scratch.ipynb: an earlier or second notebook" in moodle_stdout
    assert "onlinetext.html: not a notebook" in moodle_stdout


CANVAS_GRADEBOOK = (
    "Student,ID,SIS User ID,SIS Login ID,Section,HW1 Backprop (1201),Quiz 1 (1202),"
    "Current Points,Final Points,Current Score,Final Score\r\n"
    "    Points Possible,,,,,100.00,10.00,(read only),(read only),(read only),(read only)\r\n"
    '"Müller-Lüdenscheidt, Alice",104,S104,alice@uni.example,Section A,,8.00,8.00,8.00,80,7\r\n'
    '"O\'Brien, Bob Seán",2231,S2231,bob@uni.example,"Section A, B",EX,9.50,9.5,9.5,95,8\r\n'
    '"van der Berg, Carol Anna",35,S35,carol@uni.example,Section A,,,,,,\r\n'
    '"Nguyễn, Erin Thị",77,S77,erin@uni.example,Section B,,10,10,10,100,9\r\n'
    '"Student, Test",999,,,Section A,,,,,,\r\n'
)
MOODLE_WORKSHEET = (
    'Identifier,"Full name","Email address",Status,Grade,"Maximum Grade","Grade can be changed",'
    '"Last modified (submission)","Last modified (grade)","Feedback comments"\n'
    '"Participant 1234567","Alice Müller-Lüdenscheidt",alice@uni.example,"Submitted for '
    'grading",,25.00,Yes,"Monday, 12 October 2026, 12:00 PM",-,\n'
    '"Participant 1234568","Bob Seán O\'Brien",bob@uni.example,"Submitted for grading",,25.00,'
    'Yes,"Monday, 12 October 2026, 12:00 PM",-,"Good, ""but"" late"\n'
    '"Participant 1234569","Carol Anna van der Berg",carol@uni.example,"Submitted for grading",,'
    '25.00,Yes,"Monday, 12 October 2026, 12:00 PM",-,\n'
    '"Participant 1234570","Dave Blaine Wolfeschlegelsteinhausenbergerdorff Sr.",'
    'dave@uni.example,"Submitted for grading",,25.00,Yes,"Monday, 12 October 2026, 12:00 PM",-,\n'
    '"Participant 1234571",Participant,,"Submitted for grading",,25.00,Yes,-,-,\n'
    '"Participant 1234599","Frank No-Submission",frank@uni.example,"No submission",,25.00,Yes,'
    "-,-,\n"
)


def export(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "export", A, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def canvas_import(text: str, column: str) -> tuple[float, dict[str, str]]:
    """What Canvas's gradebook import reads: the ID columns it documents, the assignment's
    column by its header, its points possible, and a value per student ID."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    index = rows[0].index(column)
    possible = next(float(r[index]) for r in rows if r[0].strip() == "Points Possible")
    return possible, {r[1]: r[index] for r in rows[1:] if r[1]}


def moodle_import(text: str) -> dict[str, str]:
    """What Moodle's offline-grading import reads (assignfeedback_offline's gradeimporter): the
    columns Identifier, Grade and Last modified (grade), the id after 'Participant '."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    ident, grade = header.index("Identifier"), header.index("Grade")
    header.index("Last modified (grade)")
    assert all(r[ident].startswith("Participant ") for r in rows[1:])
    return {r[ident].removeprefix("Participant "): r[grade] for r in rows[1:]}


def test_canvas_gradebook_is_filled_in_and_left_as_it_was(graded, tmp_path):
    out, canvas, _ = graded["canvas"]
    gradebook = tmp_path / "canvas-gradebook.csv"
    gradebook.write_bytes(b"\xef\xbb\xbf" + CANVAS_GRADEBOOK.encode())
    run = export("--out", out, "--format", "canvas", "--gradebook", gradebook)  # found by name
    # dave (900017) was graded but is not in this gradebook: reported, and the exit code says so
    assert run.returncode == 1 and "(900017)" in run.stderr, run.stdout + run.stderr
    written = (out / "export" / f"{A}-canvas.csv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbf")
    text = written[3:].decode()
    possible, values = canvas_import(text, "HW1 Backprop (1201)")
    assert possible == 100
    for student in ("alice", "bob", "carol", "erin"):
        user = str(CANVAS[student][1])
        assert float(values[user]) == pytest.approx(4 * float(canvas[user]["score"]), abs=0.01)
    assert values["999"] == ""  # no submission: empty, not 0
    before, after = (list(csv.reader(io.StringIO(t))) for t in (CANVAS_GRADEBOOK, text))
    column = before[0].index("HW1 Backprop (1201)")
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert old[:column] + old[column + 1 :] == new[:column] + new[column + 1 :]
    assert text.splitlines(keepends=True)[:2] == CANVAS_GRADEBOOK.splitlines(keepends=True)[:2]


def test_moodle_worksheet_is_filled_in_by_participant_id(graded, tmp_path):
    out, moodle, _ = graded["moodle"]
    worksheet = tmp_path / "Grades-Course-Assignment 1-42.csv"
    worksheet.write_text(MOODLE_WORKSHEET)
    run = export("--out", out, "--format", "moodle", "--gradebook", worksheet)
    assert run.returncode == 0, run.stdout + run.stderr
    text = (out / "export" / f"{A}-moodle.csv").read_text()
    values = moodle_import(text)
    for _, pid in MOODLE.values():
        assert values[str(pid)] == moodle[str(pid)]["score"]
    assert values["1234599"] == ""
    assert text.count("\n") == MOODLE_WORKSHEET.count("\n")
    assert text.splitlines()[0] == MOODLE_WORKSHEET.splitlines()[0]
    assert '"Good, ""but"" late"' in text  # untouched, quoting and all
    zero = export("--out", out, "--format", "moodle", "--gradebook", worksheet, "--missing", "zero")
    assert zero.returncode == 0
    assert moodle_import((out / "export" / f"{A}-moodle.csv").read_text())["1234599"] == "0"


def test_new_files_follow_the_documented_import_columns(graded):
    out, moodle, _ = graded["moodle"]
    assert export("--out", out, "--format", "moodle").returncode == 0
    values = moodle_import((out / "export" / f"{A}-moodle.csv").read_text())
    assert values == {pid: row["score"] for pid, row in moodle.items()}
    out, canvas, _ = graded["canvas"]
    assert export("--out", out, "--format", "canvas").returncode == 0
    possible, values = canvas_import((out / "export" / f"{A}-canvas.csv").read_text(), A)
    assert possible == 25 and values == {user: row["score"] for user, row in canvas.items()}
    assert export("--out", out, "--format", "csv").returncode == 0
    rows = list(csv.DictReader((out / "export" / f"{A}-csv.csv").open()))
    assert {r["student"]: r["score"] for r in rows} == {u: r["score"] for u, r in canvas.items()}


def test_a_gradebook_without_the_assignment_is_refused_with_its_columns(graded, tmp_path):
    out, _, _ = graded["canvas"]
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text(CANVAS_GRADEBOOK.replace("HW1 Backprop (1201)", "Homework 1 (1201)"))
    run = export("--out", out, "--format", "canvas", "--gradebook", gradebook)
    assert run.returncode == 2 and "--column" in run.stderr and "Quiz 1 (1202)" in run.stderr
    named = export("--out", out, "--format", "canvas", "--gradebook", gradebook,
                   "--column", "Homework 1 (1201)")  # fmt: skip
    assert named.returncode == 1 and "1 graded students are not in the gradebook" in named.stderr
