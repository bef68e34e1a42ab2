"""The machinery every explorer shares: controls, the cache, the static HTML fallback.

:class:`_Explorer` holds the controls (name → ipywidgets widget), caches the
results and the rendered page per tuple of control values, draws the static
HTML rendering (settings, summary, table, figure as an embedded PNG) and
decides whether to offer the live widget view (not under the report runner).
The helpers here build controls in the house layout and render figures and
errors as HTML.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from journeylab.core.errors import JourneylabError, ParameterError, did_you_mean

#: Control value meaning "no filter" (every platform, every month).
ALL = "(all)"
#: Control value meaning "no segment".
NONE = "(none)"
_CACHE_SIZE = 32
_STYLE = "max-width:100%;height:auto"


# ---------------------------------------------------------------------------
# rendering helpers
# ---------------------------------------------------------------------------
def _frame_of(table: Any) -> Any:
    """Return a loaded table's DataFrame (``.frame``), or the object itself."""
    return (
        table.frame if hasattr(table, "frame") and isinstance(table.frame, pd.DataFrame) else table
    )


def _png(draw: Callable[[], Any], alt: str) -> str:
    """Draw a figure with ``draw()`` (returns axes) and return it as an embedded PNG ``<img>``."""
    import matplotlib.pyplot as plt

    ax = draw()
    fig = ax.figure
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    finally:
        plt.close(fig)  # closed figures are not shown again by the inline backend
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="{_STYLE}">'


def _error_html(exc: Exception) -> str:
    text = html.escape(str(exc)).replace("\n", "<br>")
    return f'<div class="jl-explorer-error" style="border-left:4px solid #d55e00;padding-left:8px">⚠ {text}</div>'


def _summary_html(text: str) -> str:
    """Return a result's ``summary()`` text as an HTML paragraph (line breaks kept)."""
    return f'<p class="jl-summary">{html.escape(text).replace(chr(10), "<br>")}</p>'


class _Explorer:
    """Controls, an output area, a cache per control tuple and the static rendering.

    Subclasses build ``self.controls`` (name → widget, in display order) and
    implement :meth:`_compute` (control values → results), :meth:`_numbers`
    (results → data twin) and :meth:`_render` (results → HTML).
    """

    title = "Explorer"

    def __init__(self) -> None:
        self.controls: dict[str, Any] = {}
        self._results: OrderedDict[Hashable, Any] = OrderedDict()
        self._html: OrderedDict[Hashable, str] = OrderedDict()
        self._holding = False
        self._widget = None
        self._output = None

    # -- values ----------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """Return the current control values, by control name."""
        return {name: _plain(w.value) for name, w in self.controls.items()}

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        return tuple((k, _hashable(v)) for k, v in sorted(values.items()))

    def set(self, **values: Any) -> _Explorer:
        """Set several controls at once, refreshing the output once; returns self.

        Examples
        --------
        >>> import pandas as pd
        >>> from journeylab.reports.widgets import FunnelExplorer
        >>> events = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "event": ["view", "buy", "view"],
        ...                        "timestamp": pd.to_datetime(["2026-10-01 09:00", "2026-10-01 09:10",
        ...                                                     "2026-10-02 10:00"], utc=True),
        ...                        "platform": ["app", "app", "web"]})
        >>> explorer = FunnelExplorer(events, ["view", "buy"], filters=["platform"])
        >>> explorer.set(platform="app", period="2026-10").values()["platform"]
        'app'
        """
        unknown = [k for k in values if k not in self.controls]
        if unknown:
            raise ParameterError(
                f"{type(self).__name__} has no control {unknown[0]!r}"
                f"{did_you_mean(unknown[0], self.controls)}; its controls are {list(self.controls)}."
            )
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self._refresh()
        return self

    # -- numbers ---------------------------------------------------------------
    def result(self) -> Any:
        """Return the analysis result(s) for the current control values (cached)."""
        values = self.values()
        key = self._key(values)
        if key not in self._results:
            self._results[key] = self._compute(**values)
            if len(self._results) > _CACHE_SIZE:
                self._results.popitem(last=False)
        else:
            self._results.move_to_end(key)
        return self._results[key]

    def data(self) -> Any:
        """Return the numbers behind the picture for the current control values."""
        return self._numbers(self.result())

    def _compute(self, **values: Any) -> Any:
        raise NotImplementedError

    def _numbers(self, result: Any) -> Any:
        raise NotImplementedError

    def _render(self, result: Any) -> str:
        raise NotImplementedError

    # -- pictures --------------------------------------------------------------
    def _describe(self, values: Mapping[str, Any]) -> str:
        """Return the enabled controls' settings in words (``platform: app · order: strict``)."""
        parts = []
        for name, value in values.items():
            control = self.controls[name]
            if control.disabled:
                continue
            shown = getattr(control, "label", value)  # a choice's label, e.g. "sample size"
            parts.append(f"{control.description or name.replace('_', ' ')}: {_label(shown)}")
        return " · ".join(parts)

    def static_html(self) -> str:
        """Render the current state as static HTML: settings, summary, table and the figure (PNG)."""
        self._sync()
        values = self.values()
        key = self._key(values)
        if key not in self._html:
            try:
                body = self._render(self.result())
            except JourneylabError as exc:
                body = _error_html(exc)
            self._html[key] = (
                f'<div class="jl-explorer"><h3>{html.escape(self.title)}</h3>'
                f'<p class="jl-controls" style="color:#555">{html.escape(self._describe(values))}</p>{body}</div>'
            )
            if len(self._html) > _CACHE_SIZE:
                self._html.popitem(last=False)
        return self._html[key]

    @property
    def output(self):
        """The ipywidgets ``Output`` that shows the current state."""
        self._build()
        return self._output

    @property
    def widget(self):
        """The whole explorer as one ipywidgets container (controls above the output)."""
        self._build()
        return self._widget

    def _layout(self) -> list[Any]:
        """Rows of controls (subclasses may group them)."""
        import ipywidgets as w

        items = list(self.controls.values())
        return [w.HBox(items[i : i + 3]) for i in range(0, len(items), 3)]

    def _build(self) -> None:
        if self._widget is not None:
            return
        import ipywidgets as w

        self._output = w.Output()
        self._widget = w.VBox([*self._layout(), self._output])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self._refresh()

    def _on_change(self, change: Any) -> None:
        if not self._holding:
            self._refresh()

    def _refresh(self) -> None:
        if self._output is None:  # not built yet: nothing to show, nothing to compute
            return
        self._sync()
        if self._key(self.values()) not in self._html:
            self._show('<p style="color:#555"><i>Computing…</i></p>')
        try:
            page = self.static_html()
        except Exception as exc:  # a callback must not die silently: say what went wrong
            page = _error_html(exc)
        self._show(page)

    def _show(self, page: str) -> None:
        self._output.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/html": page, "text/plain": self.title},
                "metadata": {},
            },
        )

    def _sync(self) -> None:
        """Enable or disable controls that depend on others (subclasses)."""

    def display(self) -> None:
        """Show the explorer in the notebook (the widget, with its static rendering)."""
        from IPython.display import display

        display(self)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if _unattended():
            # A scheduled report has no one to move a control: the static view is
            # the whole story, and no widget state bloats the executed notebook.
            return bundle
        view = self.widget._repr_mimebundle_()
        if view:
            bundle["application/vnd.jupyter.widget-view+json"] = view[
                "application/vnd.jupyter.widget-view+json"
            ]
        return bundle

    def _repr_html_(self) -> str:
        return self.static_html()

    def __repr__(self) -> str:
        self._sync()
        return f"<{type(self).__name__}: {self._describe(self.values())}>"


def _unattended() -> bool:
    """Whether the report runner executes this kernel (no widget front end to talk to)."""
    from journeylab.reports.runner import UNDER_RUNNER_ENV

    return bool(os.environ.get(UNDER_RUNNER_ENV))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _dropdown(description: str, options: Sequence[Any], value: Any, width: str = "260px"):
    import ipywidgets as w

    return w.Dropdown(
        options=list(options),
        value=value,
        description=description,
        style={"description_width": "initial"},
        layout=w.Layout(width=width),
    )


def _number_box(description: str, value: float, *, min: float, max: float, step: float):
    """Return a bounded number box in the explorers' layout (label before, 220 px wide)."""
    import ipywidgets as w

    return w.BoundedFloatText(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        style={"description_width": "initial"},
        layout=w.Layout(width="220px"),
    )


def _count_box(description: str, value: int):
    """Return a whole-number box for a count (0 to 10¹²) in the explorers' layout."""
    import ipywidgets as w

    return w.BoundedIntText(
        value=value,
        min=0,
        max=10**12,
        description=description,
        style={"description_width": "initial"},
        layout=w.Layout(width="220px"),
    )
