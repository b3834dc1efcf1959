"""Sliders over a figure that work in a live notebook and in the static book.

A slider figure is a function ``draw(**values) -> Figure`` evaluated on the grid of slider values

.. math::
    \\mathcal{V} = V_1 \\times V_2 \\times \\cdots \\times V_k, \\qquad
    |\\mathcal{V}| = \\prod_i |V_i| \\le \\text{MAX_FRAMES},

and :func:`slider_figure` shows it in one of two ways:

* **live** (a Jupyter kernel): one ``ipywidgets.SelectionSlider`` per name over an
  ``ipywidgets.Image``; every frame of :math:`\\mathcal{V}` is rendered once when the figure is
  made, as for the book, so moving a slider swaps in a ready PNG and never waits for matplotlib;
* **static** (the book's build, no kernel behind the page): every frame of :math:`\\mathcal{V}`
  is rendered once to a PNG data URI and written into self-contained HTML with a native
  ``<input type="range">``, a ``<label>`` and an ``<output>`` per slider, and a few lines of
  vanilla JavaScript that swap the ``<img>`` (and its alt text) when a slider moves.

The book build sets the environment variable ``MINIDL_BOOK_BUILD=1`` (``_ext/course_book.py``
sets it for the kernels Jupyter Book starts); everywhere else the sliders are live. A page
downloaded from the book and run in JupyterLab therefore gets live sliders.

The pattern follows ipywidgets' ``interact`` (one control per keyword argument), restricted to
finite value lists so that the static rendering can enumerate every frame.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

BOOK_BUILD_ENV = "MINIDL_BOOK_BUILD"
"""Environment variable that switches :func:`slider_figure` to static HTML when set to ``1``."""

MAX_FRAMES = 80
"""Most frames (value combinations) a slider figure may have; the static page embeds them all."""

FRAME_DPI = 80
"""Resolution of the frames embedded in the static book (pixels per inch)."""

Draw = Callable[..., Figure]
Alt = str | Callable[..., str]


def book_build() -> bool:
    """Whether this process renders the static book (``MINIDL_BOOK_BUILD=1``)."""
    return os.environ.get(BOOK_BUILD_ENV, "") == "1"


def slider_figure(
    draw: Draw,
    *,
    alt: Alt,
    labels: Mapping[str, str] | None = None,
    formats: Mapping[str, str] | None = None,
    initial: Mapping[str, Any] | None = None,
    **sliders: Sequence[Any],
) -> StaticSliders | LiveSliders:
    """A figure with one slider per keyword argument, live in Jupyter and static in the book.

    Args:
        draw: ``draw(**values)`` returns a fresh :class:`~matplotlib.figure.Figure` for one
            combination of slider values; the figure is closed once rendered.
        alt: alt text of the figure, or ``alt(**values)`` giving it per frame. A plain string is
            completed with the current slider values.
        labels: slider name -> human label (default: the name).
        formats: slider name -> format spec of the shown value, e.g. ``".2f"``.
        initial: slider name -> starting value (default: the first value).
        **sliders: slider name -> the values it steps through (numbers or strings).

    Returns:
        An object that displays as ipywidgets sliders in a kernel, or as static HTML when
        ``MINIDL_BOOK_BUILD=1``.

    Example:
        >>> def draw(depth):
        ...     fig, ax = plt.subplots()
        ...     ax.plot(range(depth))
        ...     return fig
        >>> slider_figure(draw, alt="A line", depth=[2, 4, 8])  # doctest: +SKIP
    """
    spec = SliderSpec.build(
        draw, alt=alt, labels=labels, formats=formats, initial=initial, sliders=sliders
    )
    return StaticSliders(spec) if book_build() else LiveSliders(spec)


class SliderSpec:
    """The validated description of a slider figure: names, values, labels and alt text."""

    def __init__(
        self,
        draw: Draw,
        alt: Alt,
        values: dict[str, list[Any]],
        labels: dict[str, str],
        formats: dict[str, str],
        initial: dict[str, Any],
    ) -> None:
        self.draw = draw
        self.alt = alt
        self.values = values
        self.labels = labels
        self.formats = formats
        self.initial = initial

    @classmethod
    def build(
        cls,
        draw: Draw,
        *,
        alt: Alt,
        labels: Mapping[str, str] | None,
        formats: Mapping[str, str] | None,
        initial: Mapping[str, Any] | None,
        sliders: Mapping[str, Sequence[Any]],
    ) -> SliderSpec:
        if not callable(draw):
            raise ValueError(f"slider_figure: draw must be callable, got {type(draw).__name__}")
        if not sliders:
            raise ValueError("slider_figure: give at least one slider, e.g. depth=[2, 4, 8]")
        if isinstance(alt, str):
            if not alt.strip():
                raise ValueError("slider_figure: alt text must be non-empty, got ''")
        elif not callable(alt):
            raise ValueError(f"slider_figure: alt must be a str or callable, got {alt!r}")
        values: dict[str, list[Any]] = {}
        for name, seq in sliders.items():
            if isinstance(seq, str | bytes) or not isinstance(seq, Sequence | range):
                raise ValueError(
                    f"slider_figure: slider {name!r} needs a sequence of values, got {seq!r}"
                )
            if len(seq) == 0:
                raise ValueError(f"slider_figure: slider {name!r} has no values, got {list(seq)}")
            if len(set(map(repr, seq))) != len(seq):
                raise ValueError(f"slider_figure: slider {name!r} repeats a value: {list(seq)}")
            values[name] = list(seq)
        n_frames = 1
        for seq in values.values():
            n_frames *= len(seq)
        if n_frames > MAX_FRAMES:
            sizes = " x ".join(f"{len(v)} ({k})" for k, v in values.items())
            raise ValueError(
                f"slider_figure: {sizes} = {n_frames} frames, more than MAX_FRAMES = {MAX_FRAMES}; "
                "use fewer values per slider"
            )
        for option, given in (("labels", labels), ("formats", formats), ("initial", initial)):
            unknown = sorted(set(given or {}) - set(values))
            if unknown:
                raise ValueError(
                    f"slider_figure: {option} names unknown sliders {unknown}; "
                    f"sliders are {list(values)}"
                )
        start = {name: seq[0] for name, seq in values.items()}
        for name, value in (initial or {}).items():
            if value not in values[name]:
                raise ValueError(
                    f"slider_figure: initial value {value!r} of slider {name!r} is not one of "
                    f"its values {values[name]}"
                )
            start[name] = value
        formats = dict(formats or {})
        for name, spec in formats.items():
            try:
                [format(v, spec) for v in values[name]]
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"slider_figure: format {spec!r} of slider {name!r} does not fit its values "
                    f"{values[name]}: {error}"
                ) from None
        labels = {name: (labels or {}).get(name, name) for name in values}
        return cls(draw, alt, values, labels, formats, start)

    def names(self) -> list[str]:
        return list(self.values)

    def combinations(self) -> list[dict[str, Any]]:
        """Every value combination, the last slider varying fastest (row-major order)."""
        return [
            dict(zip(self.values, combo, strict=True))
            for combo in itertools.product(*self.values.values())
        ]

    def frame_index(self, values: Mapping[str, Any]) -> int:
        """Where ``values`` stands in :meth:`combinations` (what the static page's script
        computes from the range inputs' positions too)."""
        index = 0
        for name, seq in self.values.items():
            index = index * len(seq) + seq.index(values[name])
        return index

    def value_label(self, name: str, value: Any) -> str:
        """The value as the slider shows it, e.g. ``0.10`` for ``formats={"lr": ".2f"}``."""
        spec = self.formats.get(name)
        return format(value, spec) if spec else str(value)

    def alt_text(self, values: Mapping[str, Any]) -> str:
        if callable(self.alt):
            text = self.alt(**values)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"slider_figure: alt({values}) must return non-empty text, got {text!r}"
                )
            return text
        setting = ", ".join(
            f"{self.labels[name]} = {self.value_label(name, value)}"
            for name, value in values.items()
        )
        return f"{self.alt} ({setting})"

    def render_png(
        self, values: Mapping[str, Any], *, dpi: float | None = None, compress_level: int = 6
    ) -> bytes:
        """Draw one frame, encode it as PNG (zlib level ``compress_level``) and close the
        figure."""
        fig = self.draw(**values)
        if not isinstance(fig, Figure):
            raise ValueError(
                f"slider_figure: draw({values}) must return a matplotlib Figure, "
                f"got {type(fig).__name__}"
            )
        try:
            buffer = io.BytesIO()
            fig.savefig(
                buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": compress_level}
            )
        finally:
            plt.close(fig)
        return buffer.getvalue()


class StaticSliders:
    """Every frame pre-rendered into self-contained HTML: range inputs, labels, outputs, an image.

    ``frames`` lists ``(values, data_uri, alt)`` in row-major order of the sliders, which is how
    the inline script finds the frame of a slider position.
    """

    def __init__(self, spec: SliderSpec) -> None:
        self.spec = spec
        self.frames: list[tuple[dict[str, Any], str, str]] = []
        for values in spec.combinations():
            png = spec.render_png(values, dpi=FRAME_DPI)
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            self.frames.append((values, uri, spec.alt_text(values)))

    def _repr_html_(self) -> str:
        spec = self.spec
        start = self.frames[spec.frame_index(spec.initial)]
        controls = []
        for name, seq in spec.values.items():
            position = seq.index(spec.initial[name])
            shown = spec.value_label(name, spec.initial[name])
            controls.append(
                '<div class="minidl-slider">'
                f"<label>{html.escape(spec.labels[name])} "
                f'<input type="range" min="0" max="{len(seq) - 1}" step="1" value="{position}" '
                f'aria-valuetext="{html.escape(shown)}"></label> '
                f"<output>{html.escape(shown)}</output></div>"
            )
        data = {
            "sizes": [len(seq) for seq in spec.values.values()],
            "labels": [[spec.value_label(n, v) for v in seq] for n, seq in spec.values.items()],
            "frames": [[uri, alt] for _, uri, alt in self.frames],
        }
        # "</" must not appear inside a <script>: escape the slash of any closing tag.
        payload = json.dumps(data).replace("</", "<\\/")
        return (
            '<figure class="minidl-sliders" style="margin:0">'
            f'<img src="{start[1]}" alt="{html.escape(start[2])}" '
            'style="max-width:100%;height:auto">'
            f"<figcaption>{''.join(controls)}</figcaption>"
            f'<script type="application/json">{payload}</script>'
            f"<script>{_SWITCH_FRAME_JS}</script>"
            "</figure>"
        )


_SWITCH_FRAME_JS = """(function () {
  var figure = document.currentScript.parentElement;
  var data = JSON.parse(figure.querySelector('script[type="application/json"]').textContent);
  var img = figure.querySelector("img");
  var inputs = figure.querySelectorAll('input[type="range"]');
  var outputs = figure.querySelectorAll("output");
  function show() {
    var index = 0;
    inputs.forEach(function (input, i) {
      var position = Number(input.value);
      index = index * data.sizes[i] + position;
      outputs[i].textContent = data.labels[i][position];
      input.setAttribute("aria-valuetext", data.labels[i][position]);
    });
    img.src = data.frames[index][0];
    img.alt = data.frames[index][1];
  }
  inputs.forEach(function (input) { input.addEventListener("input", show); });
})();"""


class LiveSliders:
    """ipywidgets sliders over an image of the figure; a move shows a frame rendered in advance.

    ``sliders`` maps each name to its ``SelectionSlider``; ``image`` is the ``ipywidgets.Image``
    holding the current frame; ``caption`` is an ``ipywidgets.HTML`` live region holding the
    frame's alt text; ``redraw`` is the observer every slider calls on change.

    Drawing a matplotlib figure takes 0.05-0.5 s, too slow for a slider that should follow the
    hand: a reader dragging across ten positions a second would fall seconds behind. So every
    frame is rendered before the reader can move a slider, and a move costs a dictionary
    lookup. The first frame is drawn when the sliders are made; displaying them sends it to the
    front end at once and then renders the others while the cell is still running (slider moves
    wait in the kernel's queue until then), so the figure appears after one frame's drawing,
    not after all of them. Frames are encoded with light PNG compression: they only travel
    from the kernel to the browser.

    The alt text is not the image's ``tooltip``: in ipywidgets 8 a tooltip on an ``Image``
    makes JupyterLab fail to create the view (its ``updateTooltip`` reads a ``description``
    that ``ImageModel`` lacks, jupyter-widgets/ipywidgets#3921). It lives in a visually hidden
    ``aria-live`` caption instead, which screen readers announce whenever a slider moves.
    """

    def __init__(self, spec: SliderSpec) -> None:
        import ipywidgets

        self.spec = spec
        self._frames: list[bytes | None] = [None] * len(spec.combinations())
        self.sliders = {
            name: ipywidgets.SelectionSlider(
                options=[(spec.value_label(name, v), v) for v in seq],
                index=seq.index(spec.initial[name]),
                description=spec.labels[name],
                continuous_update=True,
                style={"description_width": "initial"},
            )
            for name, seq in spec.values.items()
        }
        self.image = ipywidgets.Image(format="png")
        self.caption = ipywidgets.HTML()
        self.redraw()
        for slider in self.sliders.values():
            slider.observe(self.redraw, names="value")
        self.widget = ipywidgets.VBox([*self.sliders.values(), self.image, self.caption])

    def values(self) -> dict[str, Any]:
        return {name: slider.value for name, slider in self.sliders.items()}

    @property
    def alt(self) -> str:
        """The alt text of the frame shown."""
        return self.spec.alt_text(self.values())

    def frame(self, index: int) -> bytes:
        """The PNG of frame ``index`` (row-major order), drawn the first time it is asked for."""
        png = self._frames[index]
        if png is None:
            values = self.spec.combinations()[index]
            png = self._frames[index] = self.spec.render_png(values, compress_level=1)
        return png

    def render_all(self) -> None:
        """Draw every frame not drawn yet, so that no slider move waits for matplotlib."""
        for index in range(len(self._frames)):
            self.frame(index)

    def redraw(self, change: Mapping[str, Any] | None = None) -> None:
        """Show the frame of the sliders' current values (the ``observe`` callback)."""
        values = self.values()
        self.image.value = self.frame(self.spec.frame_index(values))
        self.caption.value = (
            f'<span aria-live="polite" style="{_VISUALLY_HIDDEN}">'
            f"{html.escape(self.spec.alt_text(values))}</span>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        self.render_all()


# Hidden from sight, not from screen readers (the usual "sr-only" rule, inline: widget HTML
# carries no style sheet).
_VISUALLY_HIDDEN = (
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;"
    "clip:rect(0,0,0,0);white-space:nowrap;border:0"
)
