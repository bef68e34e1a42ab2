"""Grouping helpers shared by the survey scores and the comment themes.

Used by :mod:`journeylab.voice.scores` and :mod:`journeylab.voice.comments`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from journeylab.core.stages import StageMap

By = str | Sequence[str] | None


def _by_columns(by: By) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return [str(b) for b in by]


def _stage_categories(values: pd.Series, stage_map: StageMap | None) -> list[str]:
    """Return stage names in journey order, then any stage the map does not know.

    Without a stage map, the stages keep the order in which they first appear.
    """
    names = StageMap.coerce(stage_map).names if stage_map is not None else []
    present = [str(v) for v in pd.unique(values.dropna().astype(str))]
    return [n for n in names if n in present] + [v for v in present if v not in names]


def _ordered(frame: pd.DataFrame, by: list[str], stage_map: StageMap | None) -> pd.DataFrame:
    """Give ``stage`` (and event-named ``touchpoint``) columns their journey order for grouping."""
    if "stage" in by:
        cats = _stage_categories(frame["stage"], stage_map)
        frame = frame.assign(
            stage=pd.Categorical(frame["stage"].astype("string"), categories=cats, ordered=True)
        )
    if "touchpoint" in by:
        # event-named touchpoints in the map's order; without a map (or for others), by name
        events = StageMap.coerce(stage_map).event_names() if stage_map is not None else []
        present = sorted(str(v) for v in pd.unique(frame["touchpoint"].dropna().astype(str)))
        cats = [e for e in events if e in present] + [v for v in present if v not in events]
        frame = frame.assign(
            touchpoint=pd.Categorical(
                frame["touchpoint"].astype("string"), categories=cats, ordered=True
            )
        )
    return frame


def _label(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    if not by:
        return pd.Series(["all answers"] * len(frame), index=frame.index)
    return frame[by].astype(str).agg(" · ".join, axis=1)
