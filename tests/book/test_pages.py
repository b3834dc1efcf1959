"""The book's pages as text: the teaching prose never reports on the test suite (what the tests
assert sits in one collapsed "What the tests check" box per page), and every slider's label uses
the symbols of the notation page."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "book").rglob("*.md"))
BOX = "```{admonition} What the tests check"

# Phrases by which prose reports on the tests instead of teaching.
TEST_TALK = re.compile(
    r"test suite|(?<!What )the tests? (?:assert|check)|\(asserted|asserted\)|asserted in the tests"
    r"|tests/\w+|the tests (?:use|run|show)|a test (?:checks|fails)|CPU time of three runs",
    re.IGNORECASE,
)

pytestmark = pytest.mark.book


def prose(text: str) -> str:
    """The page without its code cells and without its "What the tests check" box."""
    text = text.split(BOX, 1)[0]
    return re.sub(r"^```\{code-cell\}.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)


def test_there_are_pages():
    assert len(PAGES) > 40


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "book")))
def test_no_control_characters(page):
    # A "\frac" written into a Python string without a raw prefix becomes a form feed + "rac".
    found = sorted({hex(ord(c)) for c in page.read_text() if ord(c) < 32 and c not in "\n\t"})
    assert not found, f"control characters {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "book")))
def test_prose_does_not_report_the_test_suite(page):
    text = page.read_text()
    assert text.count(BOX) <= 1, "one 'What the tests check' box per page"
    found = [m.group(0) for m in TEST_TALK.finditer(prose(text))]
    assert not found, f"move these into the page's '{BOX}' box: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "book")))
def test_the_box_closes_the_page_and_is_collapsed(page):
    text = page.read_text()
    if BOX not in text:
        return
    box = text.split(BOX, 1)[1]
    assert box.splitlines()[1] == ":class: dropdown"
    assert box.rstrip().endswith("```") and box.count("\n```") == 1, "the box is the page's end"


# ----- slider labels use the notation page ------------------------------------------------------

NOTATION = ROOT / "book" / "notation.md"
GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "eta": "η",
    "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "rho": "ρ", "sigma": "σ",
    "phi": "φ", "Delta": "Δ",
}  # fmt: skip
SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SLIDER_OPTIONS = {"alt", "labels", "formats", "initial", "sliders"}


def canonical(latex: str) -> str:
    """A LaTeX symbol as a slider label writes it: ``\\eta_{\\mathrm{opt}}`` -> ``η_opt``."""
    text = re.sub(r"\\(?:mathrm|text)\{([^}]*)\}", r"\1", latex)
    text = text.replace(r"\lvert ", "|").replace(r"\lvert", "|").replace(r"\rvert", "|")
    text = re.sub(r"\\([A-Za-z]+)", lambda m: GREEK.get(m.group(1), m.group(1)), text)
    text = text.replace("{", "").replace("}", "").replace(" ", "")
    text = re.sub(r"_(\d)", lambda m: m.group(1).translate(SUBSCRIPT_DIGITS), text)
    return text.replace("^+", "⁺").replace("^-", "⁻")


def notation_rows() -> list[tuple[set[str], str]]:
    """(symbols of the row, its meaning) for every row of the notation page's tables."""
    rows = []
    for line in NOTATION.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("$"):
            continue
        symbols = set()
        for math in re.findall(r"\$([^$]+)\$", cells[0]):
            symbols.add(canonical(math.split("=")[0].strip()))
        rows.append((symbols, cells[1].lower()))
    return rows


def sliders() -> list[tuple[str, str, str | None]]:
    """(page, slider name, label or None) for every slider_figure call in the book's code cells."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for cell in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```$", text, re.M | re.S):
            code = "\n".join(line for line in cell.splitlines() if not line.startswith(":"))
            for node in ast.walk(ast.parse(code)):
                if not (
                    isinstance(node, ast.Call) and getattr(node.func, "id", "") == "slider_figure"
                ):
                    continue
                keywords = {k.arg: k.value for k in node.keywords}
                labels = ast.literal_eval(keywords["labels"]) if "labels" in keywords else {}
                for name in sorted(set(keywords) - SLIDER_OPTIONS):
                    found.append((page.parent.name, name, labels.get(name)))
    return found


def test_every_slider_is_found():
    names = {name for _, name, _ in sliders()}
    assert {"multiple", "kappa", "nu", "beta", "beta1", "lam", "p", "t"} <= names


@pytest.mark.parametrize("page,name,label", sliders(), ids=lambda v: str(v))
def test_slider_labels_use_the_notation(page, name, label):
    rows = notation_rows()
    if label is None:
        assert re.fullmatch(r"[a-z_]{3,}", name), f"slider {name!r} needs a label from the notation"
        return
    tokens = label.replace("·", " ").replace("/", " ").split()
    symbols = [t for t in tokens if not re.fullmatch(r"[A-Za-z-]{2,}", t)]
    words = [w for t in tokens if t not in symbols for w in t.lower().split("-")]
    assert words, f"label {label!r} does not say in words what the symbol is"
    assert symbols, f"label {label!r} names no symbol"
    for symbol in symbols:
        assert any(symbol in row for row, _ in rows), f"{symbol!r} is not on the notation page"
    meaning = next(m for row, m in rows if symbols[0] in row)
    missing = [w for w in words if w not in meaning]
    assert not missing, f"label {label!r}: {symbols[0]} means {meaning!r} on the notation page"


def test_every_slider_figure_has_predict_then_move_questions_with_hidden_answers():
    box = "````{admonition} Predict, then move the slider"
    for page in PAGES:
        text = page.read_text()
        sliders_here = len(re.findall(r"^slider_figure\(", text, re.M))
        boxes = text.split(box)[1:]
        assert len(boxes) == sliders_here, (
            f"{page.name}: {sliders_here} sliders, {len(boxes)} boxes"
        )
        for body in boxes:
            body = body.split("\n````", 1)[0]
            assert body.count("{admonition} Answer") >= 1 and ":class: dropdown" in body, page.name
