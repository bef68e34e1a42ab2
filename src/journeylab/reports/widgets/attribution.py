"""The attribution comparer: :func:`journeylab.attribution.attribute` models side by side."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from journeylab.core.errors import ParameterError
from journeylab.reports.widgets._base import _dropdown, _Explorer, _frame_of, _png


def _as_paths(paths: Any) -> Any:
    """Return a path table built from events, or ``paths`` as given."""
    frame = _frame_of(paths)
    if (
        isinstance(frame, pd.DataFrame)
        and "path" not in frame.columns
        and {"event", "timestamp"} <= set(frame.columns)
    ):
        from journeylab.journeys.build import path_table

        return path_table(frame)
    return frame


def attribution_data(
    paths: Any,
    *,
    models: Sequence[str] | None = None,
    order: int = 1,
    value: bool = False,
    bootstrap: bool = False,
    n_boot: int = 200,
    seed: int = 0,
    spend: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Credit per channel behind :class:`AttributionComparer` for one set of control values.

    Parameters
    ----------
    paths : path table, Journeys or events
        As :func:`journeylab.attribution.attribute` takes; an event log is
        turned into a path table with :func:`journeylab.journeys.build.path_table`.
    models : list of str, optional
        Models to compare (default :data:`journeylab.attribution.DEFAULT_MODELS`).
    order : int
        Markov order (1–4).
    value : bool
        Credit value instead of conversions.
    bootstrap : bool
        Add journey-bootstrap intervals (``n_boot`` replicates, ``seed``).
    spend : DataFrame, optional
        Spend per channel (CPA / ROAS in the result).

    Returns
    -------
    pandas.DataFrame
        ``AttributionResult.to_frame()``: one row per channel, one column per model.

    Examples
    --------
    >>> paths = pd.DataFrame({"path": [("email",), ("search", "email"), ("search",)],
    ...                       "conversions": [1, 1, 0], "non_conversions": [0, 0, 1]})
    >>> attribution_data(paths, models=["last_touch", "linear"])  # doctest: +NORMALIZE_WHITESPACE
             last_touch  linear
    channel
    email           2.0     1.5
    search          0.0     0.5
    """
    return _attribution_result(
        _as_paths(paths),
        models=models,
        order=order,
        value=value,
        bootstrap=bootstrap,
        n_boot=n_boot,
        seed=seed,
        spend=spend,
    ).to_frame()


def _attribution_result(paths, *, models, order, value, bootstrap, n_boot, seed, spend):
    from journeylab.attribution import DEFAULT_MODELS, attribute

    models = list(DEFAULT_MODELS if models is None else models)
    if not models:
        raise ParameterError("No model selected: pick at least one attribution model.")
    return attribute(
        paths,
        models,
        order=int(order),
        value=bool(value),
        n_boot=int(n_boot) if bootstrap else 0,
        seed=seed,
        spend=_frame_of(spend),
    )


class AttributionComparer(_Explorer):
    """Attribution models side by side (:func:`journeylab.attribution.attribute`).

    Parameters
    ----------
    paths : path table, Journeys or events
        The journeys to credit; an event log is turned into a path table once.
    spend : DataFrame or LoadedTable, optional
        Spend per channel and day, for CPA and ROAS.
    n_boot, seed : int
        Bootstrap replicates and seed when the bootstrap is on.

    Attributes
    ----------
    controls : dict
        ``models`` (multi-select), ``order`` (Markov order), ``metric``
        (``"conversions"`` or ``"value"``), ``bootstrap`` (on/off).

    Examples
    --------
    >>> paths = pd.DataFrame({"path": [("email",), ("search", "email"), ("search",)],
    ...                       "conversions": [1, 1, 0], "non_conversions": [0, 0, 1]})
    >>> ac = AttributionComparer(paths)
    >>> ac.set(models=["first_touch", "last_touch"]).data()  # doctest: +NORMALIZE_WHITESPACE
             first_touch  last_touch
    channel
    email            1.0         2.0
    search           1.0         0.0
    """

    title = "Attribution comparer"

    def __init__(
        self, paths: Any, spend: pd.DataFrame | None = None, *, n_boot: int = 200, seed: int = 0
    ) -> None:
        import ipywidgets as w

        from journeylab.attribution import DEFAULT_MODELS, MODELS
        from journeylab.attribution.compare import LABELS

        super().__init__()
        self.paths = _as_paths(paths)
        self.spend = _frame_of(spend)
        self.n_boot, self.seed = int(n_boot), int(seed)
        touch_level = hasattr(self.paths, "touches") or (
            isinstance(self.paths, pd.DataFrame)
            and {"journey_id", "conversion_time"} <= set(self.paths.columns)
        )
        available = [m for m in MODELS if m != "time_decay" or touch_level]
        self.controls = {
            "models": w.SelectMultiple(
                options=[(LABELS[m], m) for m in available],
                value=list(DEFAULT_MODELS),
                rows=len(available),
                description="models",
                style={"description_width": "initial"},
            ),
            "order": _dropdown("Markov order", [1, 2, 3, 4], 1, "160px"),
            "metric": w.ToggleButtons(
                options=["conversions", "value"],
                value="conversions",
                description="credit",
                style={"description_width": "initial", "button_width": "100px"},
            ),
            "bootstrap": w.Checkbox(
                value=False,
                description=f"bootstrap intervals ({self.n_boot} replicates)",
                style={"description_width": "initial"},
            ),
        }

    def _layout(self) -> list[Any]:
        import ipywidgets as w

        c = self.controls
        return [w.HBox([c["models"], w.VBox([c["order"], c["metric"], c["bootstrap"]])])]

    def _key(self, values: Mapping[str, Any]) -> Hashable:
        # the Markov order matters only when the Markov model is selected
        values = dict(values)
        if "markov" not in values["models"]:
            values["order"] = 1
        return super()._key(values)

    def _sync(self) -> None:
        self.controls["order"].disabled = "markov" not in self.controls["models"].value

    def _compute(self, **values: Any):
        return _attribution_result(
            self.paths,
            models=values["models"],
            order=values["order"],
            value=values["metric"] == "value",
            bootstrap=values["bootstrap"],
            n_boot=self.n_boot,
            seed=self.seed,
            spend=self.spend,
        )

    def _numbers(self, result: Any) -> pd.DataFrame:
        return result.to_frame()

    def _render(self, result: Any) -> str:
        return result._repr_html_() + _png(result.plot, "credit per channel by attribution model")
