"""Audiences: a dated file of whom to contact, with why, and a manifest that says how.

:func:`build` turns the analyses into an action list: one row per person with
whatever of these columns its inputs allow, and a manifest JSON beside the file.

1. **Who**: the ``people`` table (one row per ``user_id``). People whose
   ``opt_out`` column is set (true, 1, yes, y, opted_out) never appear; a missing
   value there is treated as an opt-out too (no recorded consent), and both are
   counted in the manifest.
2. **Ids**: keyed HMAC-SHA256 pseudonyms (:func:`journeylab.io.privacy.pseudonymize`,
   key from the environment or ``key=``) in ``person_id``; raw ``user_id`` only
   with ``raw_ids=True``.
3. **Columns**, each present when its inputs are present (the manifest lists
   the others and why they are missing):

   - ``lifecycle_state`` (``transactions``): the state in the period holding
     ``as_of``, by the rules of :func:`journeylab.customers.retention.lifecycle_states`
     (monthly, at risk after 1 month without a purchase, lapsed after 3);
     ``prospect`` for people with no purchase yet;
   - ``clv_tier`` (``transactions``): BG/NBD + Gamma-Gamma value over the next
     12 months (:mod:`journeylab.clv.models`), ``high`` for the top 20 % of customers,
     ``medium`` for the next 30 %, ``low`` for the rest; blank for prospects;
   - ``conversion_propensity`` (``events``): P(first conversion within
     ``horizon_days``) from :func:`journeylab.customers.propensity.fit_propensity`
     trained on monthly snapshots; blank for people who already converted;
   - ``churn_propensity`` (``transactions``): P(no purchase within
     ``churn_horizon_days``) for customers, same machinery;
   - ``uplift_score`` and ``uplift_decile`` (an ``uplift`` result from
     :func:`journeylab.customers.uplift.fit_uplift` whose features are in ``people``):
     predicted incremental probability of the outcome, and its decile against
     the evaluation people (1 = most moved by the campaign);
   - ``next_best_touchpoint`` (``events``): the touch with the highest
     probability of eventual conversion after the person's last touch
     (:func:`journeylab.attribution.next_touch.next_best_touchpoint`).
4. **Selection**: ``top_deciles=k`` keeps people in uplift deciles 1..k.
5. **Suppression**, as in the reports: with ``by=`` a column, groups of fewer
   than ``min_users`` people are left out; without it, an audience of fewer
   than ``min_users`` people is not written at all.
6. **Files**: ``<name>_<date>.csv`` (formula-safe, :func:`journeylab.io.privacy.safe_csv`)
   and/or ``.parquet``, and ``<name>_<date>.manifest.json`` with each column's
   definition, the models' methods and parameters, the seed, a fingerprint of
   the inputs and the counts (people in, excluded by opt-out, not selected,
   suppressed, written). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.actions.audience_columns import (
    _churn_propensity,
    _clv_tiers,
    _conversion_propensity,
    _Missing,
    _next_touch,
    _opted_out,
    lifecycle_by_person,
)
from journeylab.core.errors import (
    DataError,
    JourneylabError,
    ParameterError,
    check_in,
    require_columns,
)
from journeylab.core.results import Result

__all__ = [
    "build",
    "Audience",
    "COLUMN_DEFINITIONS",
    "lifecycle_by_person",
]


#: What each column of an audience file means (copied into every manifest).
COLUMN_DEFINITIONS = {
    "person_id": "keyed HMAC-SHA256 pseudonym of user_id (16 hex characters); the same id gives the same "
    "pseudonym under the same key",
    "user_id": "the raw person id (written only because raw ids were asked for explicitly)",
    "lifecycle_state": "new / active / reactivated / at_risk / lapsed in the month holding as_of, by the rules of "
    "journeylab.customers.retention.lifecycle_states (at risk after 1 month without a purchase, lapsed after 3); "
    "prospect = no purchase yet",
    "clv_tier": "tier of the predicted value over the next 12 months (BG/NBD purchases x Gamma-Gamma spend, "
    "discounted 1 %/month) among customers: high = top 20 %, medium = next 30 %, low = the rest; blank for prospects",
    "conversion_propensity": "predicted probability of a first conversion within horizon_days after as_of "
    "(logit on journey features, journeylab.customers.propensity); blank for people who already converted",
    "churn_propensity": "predicted probability of no purchase within churn_horizon_days after as_of "
    "(logit on purchase history, journeylab.customers.propensity); blank for prospects",
    "uplift_score": "predicted increase in the probability of the uplift model's outcome if contacted "
    "(journeylab.customers.uplift)",
    "uplift_decile": "decile of uplift_score among the uplift model's evaluation people: 1 = most moved by the "
    "campaign, 10 = least",
    "next_best_touchpoint": "the touch with the highest probability of eventual conversion after the person's last "
    "touch (first-order absorbing Markov chain of journeys, journeylab.attribution.next_touch)",
}


# --------------------------------------------------------------------------- result
@dataclass(repr=False, eq=False)
class Audience(Result):
    """A written audience: the rows, the manifest and where they went.

    Attributes
    ----------
    people : pandas.DataFrame
        The rows written (empty when the audience was suppressed).
    manifest : dict
        What the manifest JSON holds.
    files : dict
        ``{"csv": Path, "parquet": Path, "manifest": Path}`` of the files written.
    """

    people: pd.DataFrame
    manifest: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    title: str = "Audience"

    @property
    def counts(self) -> dict[str, int]:
        """People in, excluded, not selected, suppressed and written."""
        return dict(self.manifest["counts"])

    def to_frame(self) -> pd.DataFrame:
        """Return one row per column: written or not, with its definition or why it is missing."""
        rows = [
            {"column": c, "status": "written", "definition": d}
            for c, d in self.manifest["columns"].items()
        ]
        rows += [
            {"column": c, "status": "not computable", "definition": r}
            for c, r in self.manifest["not_computed"].items()
        ]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Describe the counts, the columns and the files, without any row-level data."""
        c = self.counts
        m = self.manifest
        lines = [
            f"Audience '{m['audience']}' of {m['date']}: {c['people_in']:,} people in, "
            f"{c['excluded_opt_out']:,} excluded by opt-out ({c['excluded_opt_out_missing']:,} of them without a "
            f"recorded choice), {c['not_selected']:,} not selected, {c['suppressed']:,} suppressed "
            f"(groups under {m['min_users']:,} people), {c['written']:,} written.",
            f"Ids: {m['ids']}.",
            f"Columns: {', '.join(m['columns'])}.",
        ]
        if m["not_computed"]:
            lines.append(
                "Not computable: "
                + "; ".join(f"{k} ({v})" for k, v in m["not_computed"].items())
                + "."
            )
        if c["written"] == 0:
            lines.append(
                "Nothing was written but the manifest: no one is left after opt-outs, selection and suppression."
            )
        if self.files:
            lines.append("Files: " + ", ".join(p.name for p in self.files.values()) + ".")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Bars of the people at each step: in, excluded by opt-out, not selected, suppressed, written."""
        from journeylab.core.viz import PALETTE, new_axes

        c = self.counts
        steps = {
            "people in": c["people_in"],
            "excluded (opt-out)": c["excluded_opt_out"],
            "not selected": c["not_selected"],
            "suppressed (small groups)": c["suppressed"],
            "written": c["written"],
        }
        ax = new_axes(ax, figsize=(7, 3.2))
        names = list(steps)[::-1]
        ax.barh(
            names, [steps[n] for n in names], color=[PALETTE[2], "0.6", "0.6", "0.6", PALETTE[0]]
        )
        for i, n in enumerate(names):
            ax.annotate(
                f"{steps[n]:,}",
                (steps[n], i),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
            )
        ax.margins(x=0.15)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.set_xlabel("people")
        ax.set_title(f"Audience '{self.manifest['audience']}'")
        return ax


# --------------------------------------------------------------------------- helpers
def _fingerprint(frame: pd.DataFrame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return {
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "sha256": digest.hexdigest(),
    }


# --------------------------------------------------------------------------- build
def build(
    people: pd.DataFrame,
    *,
    out: str | Path,
    name: str = "audience",
    date: str | dt.date | None = None,
    formats: Sequence[Literal["csv", "parquet"]] = ("csv",),
    events: pd.DataFrame | None = None,
    stage_map: Any = None,
    conversion: str | Sequence[str] | None = None,
    transactions: pd.DataFrame | None = None,
    uplift: Any = None,
    uplift_model: str | None = None,
    top_deciles: int | None = None,
    opt_out: str | None = None,
    by: str | None = None,
    raw_ids: bool = False,
    key: str | bytes | None = None,
    min_users: int = 30,
    as_of: Any = None,
    horizon_days: float = 30,
    churn_horizon_days: float = 90,
    seed: int = 0,
) -> Audience:
    """Write a dated audience file of people with their action columns, and its manifest.

    Parameters
    ----------
    people : pandas.DataFrame
        One row per person: ``user_id``, the ``opt_out`` column, and the uplift
        model's features when ``uplift`` is given.
    out : str or Path
        Folder of the files (created if needed).
    name : str
        Audience name, the start of the file names (letters, digits, ``-``, ``_``).
    date : str or date, optional
        The audience date in the file names (default: today, UTC).
    formats : sequence of {"csv", "parquet"}
        Files to write.
    events, transactions : pandas.DataFrame, optional
        Canonical event log and purchases; the columns that need them are left
        out (and the manifest says so) when they are absent.
    uplift : UpliftResult, optional
        Fitted uplift models (:func:`journeylab.customers.uplift.fit_uplift`).
    uplift_model : str, optional
        Which of its models scores people (default: the one with the best Qini coefficient).
    top_deciles : int, optional
        Keep only people in uplift deciles ``1..top_deciles``.
    opt_out : str, optional
        Column of ``people`` marking who opted out (they never appear).
    by : str, optional
        An output column defining sub-audiences; groups under ``min_users`` are left out.
    raw_ids : bool
        Write raw ``user_id`` instead of pseudonyms (only when asked explicitly).
    key : str or bytes, optional
        Pseudonymisation key (default: ``$JOURNEYLAB_PSEUDONYM_KEY`` or its file).
    min_users : int
        Small-group suppression threshold (30, as in the reports).
    as_of : date, optional
        Snapshot date of the states and scores (default: the latest event or purchase).
    horizon_days, churn_horizon_days : float
        Windows of the conversion and churn propensities.
    stage_map : StageMap, dict or YAML path, optional
        The stages of the events, which ``next_best_touchpoint`` builds its
        journeys with (without one that column is left out, and the manifest
        says why).
    seed : int
        Seed of the propensity models' holdouts (recorded in the manifest).

    Returns
    -------
    Audience

    Examples
    --------
    >>> import tempfile
    >>> people = pd.DataFrame({"user_id": [f"u{i}" for i in range(8)],
    ...                        "email_opt_out": [False] * 6 + [True, None]})
    >>> tx = pd.DataFrame({"user_id": ["u0", "u0", "u1", "u2", "u3"],
    ...                    "timestamp": pd.to_datetime(["2024-01-05", "2024-03-10", "2024-01-20",
    ...                                                 "2024-02-14", "2024-03-25"]),
    ...                    "value": [30.0, 25.0, 12.0, 8.0, 15.0]})
    >>> aud = build(people, out=tempfile.mkdtemp(), name="winback", date="2024-04-01",
    ...             transactions=tx, opt_out="email_opt_out", key="example-key-0123456789",
    ...             min_users=5)
    >>> aud.counts["excluded_opt_out"], aud.counts["written"]
    (2, 6)
    >>> aud.people["lifecycle_state"].tolist()
    ['active', 'at_risk', 'at_risk', 'new', 'prospect', 'prospect']
    >>> sorted(aud.files)
    ['csv', 'manifest']
    """
    import journeylab
    from journeylab.io.privacy import key_origin, pseudonymize, safe_csv

    if not isinstance(people, pd.DataFrame):
        raise ParameterError(f"people must be a pandas DataFrame, not {type(people).__name__}.")
    require_columns(people, ["user_id"], what="people")
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise ParameterError(
            f"name == {name!r}, must be letters, digits, '-' or '_' (it starts the file names)."
        )
    formats = list(dict.fromkeys(formats))
    if not formats:
        raise ParameterError("formats is empty; choose 'csv', 'parquet' or both.")
    for f in formats:
        check_in("formats", f, ["csv", "parquet"])
    if isinstance(min_users, bool) or int(min_users) != min_users or min_users < 1:
        raise ParameterError(f"min_users == {min_users!r}, must be a whole number >= 1.")
    if top_deciles is not None and (int(top_deciles) != top_deciles or not 1 <= top_deciles <= 10):
        raise ParameterError(
            f"top_deciles == {top_deciles!r}, must be a whole number from 1 to 10."
        )
    if top_deciles is not None and uplift is None:
        raise ParameterError(
            "top_deciles selects by uplift decile; pass uplift= (a fit_uplift result) too."
        )
    day = dt.datetime.now(dt.UTC).date() if date is None else pd.Timestamp(date).date()
    ids = people["user_id"].astype(str)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any() or people["user_id"].isna().any():
        bad = dup | people["user_id"].isna().to_numpy()
        raise DataError(
            "Each person must appear once in the people table with a user_id.",
            column="user_id",
            rows=[int(i) + 1 for i in np.flatnonzero(bad)],
            hint="drop duplicate and blank ids first.",
        )
    if not raw_ids:
        origin = key_origin(key)  # fails early, before any work, when there is no key

    # -- 1. who may appear
    n_in = len(people)
    if opt_out is not None:
        require_columns(people, [opt_out], what="people")
        out_flags, missing = _opted_out(people[opt_out], opt_out)
    else:
        out_flags = missing = np.zeros(n_in, dtype=bool)
    kept = people.loc[~out_flags].copy()
    kept.index = kept["user_id"].astype(str).to_numpy()

    # -- 3. columns
    stamps = []
    if events is not None:
        require_columns(events, ["user_id", "timestamp", "event"], what="events")
        events = events.assign(timestamp=pd.to_datetime(events["timestamp"], utc=True))
        stamps.append(events["timestamp"].max())
    if transactions is not None:
        require_columns(transactions, ["user_id", "timestamp", "value"], what="transactions")
        stamps.append(pd.to_datetime(transactions["timestamp"], utc=True).max())
    if as_of is None:
        snapshot = max(stamps) if stamps else pd.Timestamp(day, tz="UTC")
    else:
        snapshot = pd.Timestamp(as_of)
        snapshot = (
            snapshot.tz_localize("UTC") if snapshot.tzinfo is None else snapshot.tz_convert("UTC")
        )
    columns: dict[str, pd.Series] = {}
    models: dict[str, Any] = {}
    missing_cols: dict[str, str] = {}

    def attempt(names: list[str], needs: str | None, compute) -> None:
        if needs is not None:
            for n in names:
                missing_cols[n] = needs
            return
        try:
            values, params = compute()
        except (_Missing, JourneylabError, np.linalg.LinAlgError) as exc:
            reason = str(exc).splitlines()[0]
            for n in names:
                missing_cols[n] = f"not computable: {reason}"
            return
        for n, v in zip(names, values, strict=True):
            columns[n] = v
        models[names[0] if len(names) == 1 else names[0].split("_")[0]] = params

    tx_need = None if transactions is not None else "no transactions table was given"
    ev_need = None if events is not None else "no events table was given"

    def lifecycle():
        state = lifecycle_by_person(transactions, snapshot)
        values = pd.Series(kept.index.map(lambda u: state.get(u, "prospect")), index=kept.index)
        return [values], {
            "freq": "M",
            "at_risk": 1,
            "lapsed": 3,
            "period": str(snapshot.tz_convert(None).to_period("M")),
        }

    def clv():
        tier, params = _clv_tiers(transactions, snapshot)
        return [tier.reindex(kept.index)], params

    def conversion_scores():
        scores, params = _conversion_propensity(
            events, snapshot, horizon_days, seed, conversion=conversion
        )
        return [scores.reindex(kept.index)], params

    def churn():
        scores, params = _churn_propensity(transactions, snapshot, churn_horizon_days, seed)
        return [scores.reindex(kept.index)], params

    def uplift_columns():
        feats = [f for f in uplift.settings["features"] if f not in kept.columns]
        if feats:
            raise _Missing(f"people lacks the uplift model's feature(s) {feats}")
        model = uplift._model_name(uplift_model)
        score = uplift.predict(kept, model)
        decile = uplift.decile_of(kept, model)
        q = uplift.qini.set_index("model").loc[model]
        params = {
            **uplift.models[model].describe(),
            "model": model,
            "settings": {k: v for k, v in uplift.settings.items()},
            "design": uplift.design.describe(),
            "qini": float(q["qini"]),
            "qini_ci": [float(q["qini_ci_low"]), float(q["qini_ci_high"])],
            "decile_cuts": "quantiles of uplift_score among the model's evaluation people",
        }
        return [score, decile], params

    def next_touch():
        person, params = _next_touch(events, snapshot, stage_map=stage_map, conversion=conversion)
        return [person.reindex(kept.index)], params

    attempt(["lifecycle_state"], tx_need, lifecycle)
    attempt(["clv_tier"], tx_need, clv)
    attempt(["conversion_propensity"], ev_need, conversion_scores)
    attempt(["churn_propensity"], tx_need, churn)
    attempt(
        ["uplift_score", "uplift_decile"],
        None if uplift is not None else "no uplift model was given",
        uplift_columns,
    )
    attempt(["next_best_touchpoint"], ev_need, next_touch)
    if top_deciles is not None and "uplift_decile" not in columns:
        raise ParameterError(
            f"top_deciles needs the uplift decile, which is {missing_cols['uplift_decile']}."
        )

    table = pd.DataFrame(index=kept.index)
    for n in COLUMN_DEFINITIONS:
        if n in columns:
            table[n] = columns[n].to_numpy()
    if "uplift_decile" in table:
        table["uplift_decile"] = table["uplift_decile"].astype("Int64")

    # -- 4. selection, 5. suppression
    selected = table if top_deciles is None else table[table["uplift_decile"] <= top_deciles]
    not_selected = len(table) - len(selected)
    suppressed_groups = 0
    if by is not None:
        if by not in selected.columns:
            raise ParameterError(
                f"by == {by!r} is not a column of this audience; its columns are {list(selected.columns)}."
            )
        sizes = selected.groupby(selected[by].astype(str), dropna=False)[by].transform("size")
        small = sizes < min_users
        suppressed_groups = int(selected.loc[small, by].astype(str).nunique())
        final = selected[~small]
    else:
        final = selected if len(selected) >= min_users else selected.iloc[:0]
        suppressed_groups = int(len(selected) < min_users and len(selected) > 0)
    suppressed = len(selected) - len(final)

    # -- 2. ids
    final = final.copy()
    if raw_ids:
        final.insert(0, "user_id", final.index.to_numpy())
        ids_text = "raw user_id (asked for explicitly with raw_ids=True)"
    else:
        final.insert(
            0,
            "person_id",
            pseudonymize(pd.Series(final.index.to_numpy(), dtype="str"), key).to_numpy(),
        )
        ids_text = f"keyed HMAC-SHA256 pseudonyms (key from {origin})"
    final = final.reset_index(drop=True)

    written_cols = [c for c in final.columns]
    manifest = {
        "audience": name,
        "date": day.isoformat(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "as_of": snapshot.isoformat(),
        "journeylab_version": journeylab.__version__,
        "ids": ids_text,
        "columns": {c: COLUMN_DEFINITIONS[c] for c in written_cols},
        "not_computed": missing_cols,
        "models": models,
        "seed": seed,
        "selection": {
            "top_deciles": top_deciles,
            "uplift_model": models.get("uplift", {}).get("model"),
        },
        "opt_out_column": opt_out,
        "min_users": int(min_users),
        "by": by,
        "input_fingerprint": {
            "people": _fingerprint(people),
            "events": _fingerprint(events),
            "transactions": _fingerprint(transactions),
        },
        "counts": {
            "people_in": n_in,
            "excluded_opt_out": int(out_flags.sum()),
            "excluded_opt_out_missing": int(missing.sum()),
            "not_selected": int(not_selected),
            "suppressed": int(suppressed),
            "suppressed_groups": suppressed_groups,
            "written": len(final),
        },
    }

    # -- 6. files
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_{day.isoformat()}"
    files: dict[str, Path] = {}
    if len(final):
        if "csv" in formats:
            files["csv"] = _atomic(folder / f"{stem}.csv", lambda p: safe_csv(final, p))
        if "parquet" in formats:
            files["parquet"] = _atomic(
                folder / f"{stem}.parquet", lambda p: final.to_parquet(p, index=False)
            )
    manifest["files"] = {k: p.name for k, p in files.items()}
    text = json.dumps(_finite(manifest), indent=2, default=_json_default, allow_nan=False)
    files["manifest"] = _atomic(
        folder / f"{stem}.manifest.json", lambda p: p.write_text(text, encoding="utf-8")
    )
    return Audience(people=final, manifest=manifest, files=files)


def _atomic(path: Path, write) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by None so the manifest is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value
