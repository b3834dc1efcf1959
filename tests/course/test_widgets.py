"""slider_figure: static frames for the book, live ipywidgets in a kernel, and its input checks."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course.widgets import BOOK_BUILD_ENV, MAX_FRAMES, LiveSliders, StaticSliders, slider_figure

pytestmark = pytest.mark.widgets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Recorder:
    """A draw function that remembers its calls and puts the values into the figure's pixels."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **values) -> plt.Figure:
        self.calls.append(values)
        fig, ax = plt.subplots(figsize=(1.5, 1))
        ax.set_title(" ".join(map(str, values.values())), fontsize=6)
        return fig


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture
def static(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BOOK_BUILD_ENV, "1")


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOK_BUILD_ENV, raising=False)


def test_book_build_renders_one_frame_per_value_combination(static) -> None:
    draw = Recorder()
    view = slider_figure(draw, alt="Curves", depth=[2, 4, 8], activation=["sigmoid", "relu"])
    assert isinstance(view, StaticSliders)
    expected = [{"depth": d, "activation": a} for d in (2, 4, 8) for a in ("sigmoid", "relu")]
    assert draw.calls == expected
    assert [values for values, _, _ in view.frames] == expected
    pngs = [
        base64.b64decode(uri.removeprefix("data:image/png;base64,")) for _, uri, _ in view.frames
    ]
    assert all(png.startswith(PNG_MAGIC) for png in pngs)
    assert len(set(pngs)) == len(pngs), "each combination must draw its own frame"
    assert plt.get_fignums() == [], "slider_figure must close the figures it renders"


def test_static_html_has_a_labelled_range_and_output_per_slider(static) -> None:
    view = slider_figure(
        Recorder(),
        alt="Curves",
        labels={"lr": "learning rate"},
        formats={"lr": ".2f"},
        initial={"lr": 0.1, "activation": "relu"},
        lr=[0.05, 0.1, 0.2, 0.4],
        activation=["sigmoid", "relu"],
    )
    html = view._repr_html_()
    tags = parse(html)
    ranges = [attrs for tag, attrs in tags if tag == "input"]
    assert [(r["type"], r["min"], r["max"], r["value"]) for r in ranges] == [
        ("range", "0", "3", "1"),
        ("range", "0", "1", "1"),
    ]
    assert [r["aria-valuetext"] for r in ranges] == ["0.10", "relu"]
    assert re.findall(r"<label>([^<]*) <input", html) == ["learning rate", "activation"]
    assert re.findall(r"<output>([^<]*)</output>", html) == ["0.10", "relu"]
    img = next(attrs for tag, attrs in tags if tag == "img")
    _, uri, alt = view.frames[view.spec.frame_index({"lr": 0.1, "activation": "relu"})]
    assert (
        (img["src"], img["alt"])
        == (uri, alt)
        == (uri, "Curves (learning rate = 0.10, activation = relu)")
    )
    data = script_data(html)
    assert data["sizes"] == [4, 2] and len(data["frames"]) == 8
    assert data["labels"] == [["0.05", "0.10", "0.20", "0.40"], ["sigmoid", "relu"]]
    assert "http" not in html.replace(uri, ""), "the static view must not load anything remote"


def script_data(html: str) -> dict:
    """The frames and value labels the inline script switches between."""
    payload = re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1)
    return json.loads(payload)


def test_callable_alt_text_is_evaluated_per_frame(static) -> None:
    view = slider_figure(Recorder(), alt=lambda k: f"{k} layers", k=[1, 2, 3])
    assert [alt for _, _, alt in view.frames] == ["1 layers", "2 layers", "3 layers"]


def test_frames_beyond_the_cap_raise_before_drawing(static) -> None:
    draw = Recorder()
    side = int(MAX_FRAMES**0.5) + 1
    with pytest.raises(
        ValueError, match=rf"{side * side} frames, more than MAX_FRAMES = {MAX_FRAMES}"
    ):
        slider_figure(draw, alt="x", a=list(range(side)), b=list(range(side)))
    assert draw.calls == []


def test_live_mode_builds_sliders_whose_change_redraws(live, monkeypatch) -> None:
    import ipywidgets

    draw = Recorder()
    view = slider_figure(
        draw,
        alt="Norms",
        labels={"depth": "depth L"},
        formats={"lr": ".1e"},
        depth=[2, 4, 8],
        lr=[0.01, 0.1],
    )
    assert isinstance(view, LiveSliders)
    depth, lr = view.sliders["depth"], view.sliders["lr"]
    assert isinstance(depth, ipywidgets.SelectionSlider)
    assert (depth.description, lr.description) == ("depth L", "lr")
    assert lr.options == (("1.0e-02", 0.01), ("1.0e-01", 0.1))
    assert lr.label == "1.0e-02"
    every_frame = [{"depth": d, "lr": r} for d in (2, 4, 8) for r in (0.01, 0.1)]
    assert draw.calls == every_frame[:1], "the first frame is drawn when the sliders are made"
    first = bytes(view.image.value)
    assert first.startswith(PNG_MAGIC)
    assert view.image.tooltip in (None, ""), "a tooltip breaks the Image view in JupyterLab"
    assert "Norms (depth L = 2, lr = 1.0e-02)" in view.caption.value
    assert 'aria-live="polite"' in view.caption.value

    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    view._ipython_display_()  # shows the widget first, then draws the other frames
    assert shown == [view.widget]
    assert draw.calls == every_frame, "every frame is drawn once, before a slider can move"

    depth.value = 8  # the registered observer shows the frame
    assert bytes(view.image.value) != first
    assert view.alt == "Norms (depth L = 8, lr = 1.0e-02)"
    assert "Norms (depth L = 8, lr = 1.0e-02)" in view.caption.value
    deep_slow = bytes(view.image.value)

    lr.value = 0.1
    view.redraw({"name": "value", "old": 0.01, "new": 0.1})  # called as ipywidgets would
    assert bytes(view.image.value) not in (first, deep_slow)
    assert view.alt == "Norms (depth L = 8, lr = 1.0e-01)"

    depth.value = 2
    lr.value = 0.01
    assert bytes(view.image.value) == first
    assert draw.calls == every_frame, "a move shows a ready frame and never draws"
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one slider"),
        ({"depth": []}, "slider 'depth' has no values"),
        ({"depth": 3}, "slider 'depth' needs a sequence of values, got 3"),
        ({"depth": "abc"}, "slider 'depth' needs a sequence"),
        ({"depth": [1, 1]}, "slider 'depth' repeats a value"),
        (
            {"depth": [1, 2], "initial": {"depth": 3}},
            r"initial value 3 of slider 'depth' is not one of its values \[1, 2\]",
        ),
        ({"depth": [1, 2], "initial": {"width": 3}}, r"initial names unknown sliders \['width'\]"),
        (
            {"depth": [1, 2], "labels": {"dpth": "Depth"}},
            r"labels names unknown sliders \['dpth'\]",
        ),
        ({"act": ["relu"], "formats": {"act": ".2f"}}, "format '.2f' of slider 'act' does not fit"),
        ({"depth": [1, 2], "alt": "  "}, "alt text must be non-empty"),
        ({"depth": [1, 2], "alt": 3}, "alt must be a str or callable, got 3"),
    ],
)
def test_bad_input_raises_a_named_error(live, kwargs: dict, message: str) -> None:
    kwargs = {"alt": "a figure", **kwargs}
    with pytest.raises(ValueError, match=rf"slider_figure: .*{message}"):
        slider_figure(Recorder(), **kwargs)


@pytest.mark.parametrize("mode", ["static", "live"])
def test_draw_must_return_a_figure_and_alt_text(request, mode: str) -> None:
    request.getfixturevalue(mode)
    with pytest.raises(
        ValueError, match=r"draw\(\{'k': 1\}\) must return a matplotlib Figure, got int"
    ):
        slider_figure(lambda k: 1, alt="x", k=[1])
    with pytest.raises(ValueError, match=r"alt\(\{'k': 1\}\) must return non-empty text, got ''"):
        slider_figure(Recorder(), alt=lambda k: "", k=[1])
