"""The book's pages as text: the teaching prose never reports on the test suite (what the tests
assert sits in one collapsed "What the tests check" box per page), and every slider's label uses
the symbols of the notation page."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "book").glob("ch*/*.md"))
BOX = "```{admonition} What the tests check"

# Phrases by which prose reports on the tests instead of teaching.
TEST_TALK = re.compile(
    r"test suite|the tests? (?:assert|check)|\(asserted|asserted\)|asserted in the tests"
    r"|tests/book|a test checks|CPU time of three runs",
    re.IGNORECASE,
)

pytestmark = pytest.mark.book


def prose(text: str) -> str:
    """The page without its code cells and without its "What the tests check" box."""
    text = text.split(BOX, 1)[0]
    return re.sub(r"^```\{code-cell\}.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)


def test_there_are_pages():
    assert len(PAGES) > 40


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_prose_does_not_report_the_test_suite(page):
    text = page.read_text()
    assert text.count(BOX) <= 1, "one 'What the tests check' box per page"
    found = [m.group(0) for m in TEST_TALK.finditer(prose(text))]
    assert not found, f"move these into the page's '{BOX}' box: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_box_closes_the_page_and_is_collapsed(page):
    text = page.read_text()
    if BOX not in text:
        return
    box = text.split(BOX, 1)[1]
    assert box.splitlines()[1] == ":class: dropdown"
    assert box.rstrip().endswith("```") and box.count("\n```") == 1, "the box is the page's end"
