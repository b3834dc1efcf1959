"""Canvas and Moodle downloads read as they are (autograder.lms), and the late policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lmsfixtures import Entry, canvas_file, canvas_prefix, extract, moodle_file, write_zip

from autograder import export, late, lms
from autograder.grading import SubmissionRecord
from autograder.submissions import Submission, collect_download

pytestmark = pytest.mark.autograder

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
A = "hw1-backprop"

# (sortable name, Canvas user id): accents, apostrophes, hyphens, spaces, digits, a long name
CANVAS_STUDENTS = {
    "jurgen": ("Müller-Lüdenscheidt, Jürgen", 104),
    "siobhan": ("O'Brien, Siobhán", 2231),
    "anna": ("van der Berg, Anna Maria", 35),
    "hubert": ("Wolfeschlegelsteinhausenbergerdorff Sr., Hubert Blaine Wolfe_3_rd", 900017),
    "khai": ("Nguyễn, Thị Minh Khai", 77),
}


def test_canvas_names_follow_canvas_rules():
    assert canvas_file("O'Brien, Siobhán", 2231, 5, "hw1.ipynb") == "obriensiobhán_2231_5_hw1.ipynb"
    assert canvas_file("Doe, Jo", 7, 9, "a b.ipynb", late=True) == "doejo_late_7_9_a b.ipynb"
    assert canvas_file("Wolfe_3_rd, Hu", 1, 2, "x.pdf") == "wolfe3rdhu_1_2_x.pdf"
    assert canvas_file(None, 7, 9, "x.ipynb", late=True) == "late_7_9_x.ipynb"  # anonymous


def canvas_download() -> list[Entry]:
    entries = []
    for key, (name, user) in CANVAS_STUDENTS.items():
        marked = key == "siobhan"  # Canvas marks all files of a late submission
        file = canvas_file(name, user, 5000 + user, f"{A}.ipynb", late=marked)
        entries.append(Entry(file, key.encode()))
    jurgen, siobhan = CANVAS_STUDENTS["jurgen"], CANVAS_STUDENTS["siobhan"]
    anna = CANVAS_STUDENTS["anna"]
    entries += [
        # a resubmission: Canvas renames the second upload of the same name hw1-backprop-1
        Entry(canvas_file(*jurgen, 9000, f"{A}-1.ipynb"), b"jurgen, again"),
        Entry(canvas_file(*jurgen, 9001, "report.pdf"), b"%PDF"),
        Entry(canvas_file(*siobhan, 100, "my hw1 (final) copy.ipynb", late=True), b"x"),
        Entry(canvas_file(*anna, 7000, "notes.txt"), b"notes"),
        Entry(canvas_file(None, 55, 4242, f"{A}.ipynb", late=True), b"anonymous"),
        Entry(f"{canvas_prefix(*anna)}_text.html", b"<p>text entry</p>"),  # a text entry
    ]
    return entries


@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_a_canvas_download_is_read_by_user_id_with_late_marker_and_latest_notebook(
    tmp_path, layout
):
    archive = write_zip(tmp_path / "submissions.zip", canvas_download())
    path = archive if layout == "zip" else extract(archive, tmp_path / "extracted")
    collected = collect_download(path, A)
    assert collected.lms == "canvas"
    by_id = {s.student: s for s in collected.submissions}
    assert sorted(by_id) == sorted([str(u) for _, u in CANVAS_STUDENTS.values()] + ["55"])
    assert by_id["104"].content == b"jurgen, again"  # the higher attachment id
    assert by_id["104"].name == "müllerlüdenscheidtjürgen"
    assert by_id["2231"].content == b"siobhan"  # its attachment id is higher than the late one
    assert by_id["2231"].late is True and by_id["104"].late is False
    assert by_id["55"].late is True and by_id["55"].name == ""
    assert by_id["900017"].name.startswith("wolfeschlegelsteinhausenbergerdorffsr")
    assert by_id["77"].name == "nguyễnthịminhkhai"
    skipped = "\n".join(collected.skipped)
    for what in (f"{A}.ipynb: an earlier or second notebook", "report.pdf: not a notebook",
                 "my hw1 (final) copy.ipynb: an earlier", "notes.txt: not a notebook",
                 "text.html: not a notebook"):  # fmt: skip
        assert what in skipped
    assert any("report.pdf" in note for note in by_id["104"].notes)


MOODLE_STUDENTS = {  # full name, participant id
    "jurgen": ("Jürgen Müller-Lüdenscheidt", 1234567),
    "siobhan": ("Siobhán O'Brien", 1234568),
    "anna": ("Anna Maria van der Berg", 1234569),
    "hubert": ("Hubert Blaine Wolfeschlegelsteinhausenbergerdorff Sr. the_3rd", 1234570),
    "blind": ("Participant", 1234571),  # blind marking
}


def moodle_download(*, folders: bool = True) -> list[Entry]:
    entries = [
        Entry(moodle_file(name, pid, f"{A}.ipynb", folders=folders), key.encode())
        for key, (name, pid) in MOODLE_STUDENTS.items()
    ]
    jurgen, anna = MOODLE_STUDENTS["jurgen"], MOODLE_STUDENTS["anna"]
    early, later = (2026, 10, 10, 9, 0, 0), (2026, 10, 14, 9, 0, 0)
    entries += [
        Entry(moodle_file(*jurgen, "old try.ipynb", folders=folders), b"older", early),
        Entry(moodle_file(*jurgen, "report.pdf", folders=folders), b"%PDF"),
        # in folders, a student's own sub-folder is kept; flat, Moodle keeps the name only
        Entry(
            moodle_file(*anna, f"{'drafts/' if folders else ''}hw1 v2.ipynb", folders=folders),
            b"anna v2",
            later,
        ),
    ]
    if folders:
        entries.append(Entry("Siobhán O'Brien_1234568_assignsubmission_onlinetext/onlinetext.html",
                             b"<p>see my notebook</p>"))  # fmt: skip
    return entries


@pytest.mark.parametrize("layout", ["zip", "folder", "flat", "moodle<4.1"])
def test_a_moodle_download_is_read_by_participant_id(tmp_path, layout):
    entries = moodle_download(folders=layout != "flat")
    if layout == "moodle<4.1":  # the plugin folder ended with "_"
        entries = [Entry(e.name.replace("_file/", "_file_/"), e.content, e.date_time)
                   for e in entries]  # fmt: skip
    archive = write_zip(tmp_path / "Course-Assignment 1-42.zip", entries)
    path = extract(archive, tmp_path / "extracted") if layout == "folder" else archive
    collected = collect_download(path, A)
    assert collected.lms == "moodle"
    by_id = {s.student: s for s in collected.submissions}
    assert sorted(by_id) == [str(pid) for _, pid in MOODLE_STUDENTS.values()]
    assert by_id["1234567"].name == "Jürgen Müller-Lüdenscheidt"
    assert by_id["1234567"].content == b"jurgen"  # newer than "old try.ipynb"
    assert by_id["1234569"].content == b"anna v2"  # the latest, in a sub-folder of its own
    assert by_id["1234570"].name.endswith("Sr. the 3rd")  # Moodle turned "_" into a space
    assert by_id["1234571"].name == "Participant"
    assert all(s.late is None for s in collected.submissions)  # Moodle has no late marker
    skipped = "\n".join(collected.skipped)
    assert "old try.ipynb: an earlier or second notebook" in skipped
    assert "report.pdf: not a notebook" in skipped


def test_plain_folders_and_zips_are_not_taken_for_a_download(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.ipynb").write_bytes(NB)
    (folder / "bob_2.ipynb").write_bytes(NB)
    collected = collect_download(folder, A)
    assert collected.lms is None
    assert [s.student for s in collected.submissions] == ["alice", "bob_2"]


def test_a_download_without_notebooks_is_refused(tmp_path):
    archive = write_zip(tmp_path / "s.zip", [Entry(canvas_file("Doe, Jo", 1, 2, "hw.pdf"), b"")])
    with pytest.raises(ValueError, match="no notebooks in"):
        collect_download(archive, A)


def test_stray_files_of_a_download_are_reported(tmp_path):
    entries = [*moodle_download(), Entry("index.html", b"")]
    files = lms.members(write_zip(tmp_path / "m.zip", entries))
    download = lms.read_download(files, A)
    assert "index.html: not named as Moodle names its files" in download.skipped


# --- the late policy -----------------------------------------------------------------------

DEADLINE = datetime(2026, 10, 12, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "after", "expected"),
    [
        (late.Policy(), timedelta(hours=5), (5.0, 0.0)),
        (late.Policy("per-hour", rate=0.05), timedelta(minutes=61), (61 / 60, 0.10)),
        (late.Policy("per-hour", rate=0.05, max_penalty=0.3), timedelta(hours=10), (10.0, 0.3)),
        (late.Policy("per-day", rate=0.1), timedelta(hours=25), (25.0, 0.2)),
        (late.Policy("per-day", rate=0.1), timedelta(hours=-3), (0.0, 0.0)),
        (late.Policy("per-day", rate=0.1, cutoff_hours=48), timedelta(hours=49), (49.0, 1.0)),
        (late.Policy("zero-after-cutoff", cutoff_hours=0), timedelta(seconds=1), (1 / 3600, 1.0)),
        (late.Policy("zero-after-cutoff", cutoff_hours=24), timedelta(hours=23), (23.0, 0.0)),
    ],
)
def test_penalty_by_submission_time(policy, after, expected):
    hours, fraction = late.penalty(policy, DEADLINE + after, DEADLINE)
    assert hours == pytest.approx(expected[0]) and fraction == pytest.approx(expected[1])


def test_a_late_flag_alone_counts_as_flag_hours():
    assert late.penalty(late.Policy("per-day", rate=0.1), True, None) == (1.0, 0.1)
    assert late.penalty(late.Policy("per-hour", rate=0.1, flag_hours=3), True, DEADLINE) == (
        3.0,
        pytest.approx(0.3),
    )
    assert late.penalty(late.Policy("zero-after-cutoff", cutoff_hours=0), True, None) == (1.0, 1.0)
    assert late.penalty(late.Policy("per-day", rate=0.1), False, DEADLINE) == (0.0, 0.0)
    assert late.penalty(late.Policy("per-day", rate=0.1), None, DEADLINE) == (None, 0.0)


def test_the_submission_record_applies_the_policy_to_the_result_on_the_instructors_side():
    """What the feedback and grades.csv get: the late marker or the time through the rule, the
    score after the penalty, and a note only when the submission was late."""
    per_day = late.AssignmentRule(DEADLINE, late.Policy("per-day", rate=0.25))
    marked = SubmissionRecord.of(Submission("2231", b"", name="obrien", late=True), per_day)
    assert marked == SubmissionRecord("obrien", 1.0, 0.25, marked_late=True)
    assert marked.score(20) == 15
    assert marked.note(20, 25) == (
        "Your submission was marked late by the course's LMS (counted as 1 hours late): the "
        "late policy takes 25% of your score, 20 -> 15 / 25."
    )
    timed = Submission("s", b"", submitted_at=DEADLINE + timedelta(hours=30))
    record = SubmissionRecord.of(timed, per_day)
    assert (record.late_hours, record.penalty, record.marked_late) == (30.0, 0.5, False)
    assert record.note(10, 10).startswith("Your submission was 30.0 hours late: ")
    on_time = SubmissionRecord.of(Submission("s", b"", late=False), per_day)
    unknown = SubmissionRecord.of(Submission("s", b""), per_day)  # a plain folder: no time
    assert (on_time.late_hours, on_time.penalty, on_time.note(10, 10)) == (0.0, 0.0, None)
    assert (unknown.late_hours, unknown.penalty, unknown.note(10, 10)) == (None, 0.0, None)
    free = late.AssignmentRule(None, late.Policy())
    assert SubmissionRecord.of(Submission("s", b"", late=True), free).note(10, 10) == (
        "Your submission was marked late by the course's LMS (counted as 1 hours late)."
    )


def test_course_file_gives_each_assignment_its_deadline_and_policy(tmp_path):
    course = tmp_path / "course.toml"
    course.write_text(
        '[late]\npolicy = "per-day"\nrate = 0.1\n\n'
        "[assignments.hw1-backprop]\ndeadline = 2026-10-12T23:59:00+02:00\n\n"
        '[assignments.hw2-gradient-descent]\nlate = { policy = "none" }\n'
    )
    rules = late.load(course)
    hw1 = late.rule_for(rules, "hw1-backprop")
    assert hw1.deadline.utcoffset() == timedelta(hours=2) and hw1.policy.rate == 0.1
    assert late.rule_for(rules, "hw2-gradient-descent").policy.policy == "none"
    assert late.rule_for(rules, "hw3-second-order").deadline is None
    assert late.load(late.COURSE_FILE)["*"].policy.policy == "none"  # the shipped file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[late]\npolicy = "weekly"', "is not one of"),
        ('[late]\npolicy = "zero-after-cutoff"', "needs cutoff_hours"),
        ("[late]\nrate = 2", "fractions"),
        ("[late]\nrates = 0.1", "unknown key"),
        ("[assignments.a]\ndeadline = 2026-10-12T23:59:00", "UTC offset"),
    ],
)
def test_a_bad_course_file_is_refused_clearly(tmp_path, text, message):
    course = tmp_path / "course.toml"
    course.write_text(text)
    with pytest.raises(ValueError, match=message):
        late.load(course)


# --- grades into a gradebook file ----------------------------------------------------------

GRADES = [
    export.Grade("104", "müllerjürgen", 20.0, 25.0, "0", "0", "graded"),
    export.Grade("2231", "obriensiobhán", 12.5, 25.0, "1", "0.2", "graded"),
]


def test_csv_records_keep_every_field_s_raw_span():
    text = 'a,"b ""q"", c",\r\n"multi\nline",,x\n\nlast'
    records = export.split_records(text)
    assert [[v for v, _ in r] for r in records] == [
        ["a", 'b "q", c', ""],
        ["multi\nline", "", "x"],
        ["last"],
    ]
    start, end = records[0][1][1]
    assert text[start:end] == '"b ""q"", c"'


def test_a_canvas_gradebook_changes_in_the_assignment_column_only():
    gradebook = (
        "Student,ID,SIS User ID,SIS Login ID,Section,HW1 Backprop (1201),Quiz (7)\r\n"
        "    Points Possible,,,,,50.00,10\r\n"
        '"Müller, Jürgen",104,S1,jm,"A, B",,"9,5"\r\n'
        '"Test, Student",999,,,A,3,\r\n'
    )
    result = export.export(GRADES, "hw1-backprop", "canvas", gradebook=gradebook)
    assert result.text == gradebook.replace(',"A, B",,', ',"A, B",40,').replace(",A,3,", ",A,,")
    assert [g.student for g in result.unmatched] == ["2231"] and result.scale == 2
    assert (result.filled, result.empty) == (1, 1)


def test_a_moodle_worksheet_changes_in_the_grade_column_only():
    worksheet = (
        'Identifier,"Full name",Grade,"Maximum Grade","Last modified (grade)"\n'
        '"Participant 104","Jürgen Müller",,25.00,-\n'
        '"Participant 2231","Siobhán O\'Brien",3,25.00,"Monday, 12 October 2026, 1:00 PM"\n'
    )
    result = export.export(GRADES, "hw1-backprop", "moodle", gradebook=worksheet, missing="zero")
    assert result.text == worksheet.replace(",,25.00", ",20,25.00").replace(",3,25", ",12.5,25")
    assert result.unmatched == []


def test_a_gradebook_without_the_import_columns_is_refused():
    with pytest.raises(ValueError, match="no column 'Last modified \\(grade\\)'"):
        export.export(GRADES, "hw1-backprop", "moodle", gradebook="Identifier,Grade\n")
    with pytest.raises(ValueError, match="no column 'ID'"):
        export.export(GRADES, "hw1-backprop", "canvas", gradebook="Student,Score\n")
