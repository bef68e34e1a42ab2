"""Who will convert and who will churn.

- :func:`propensity_features` turns an event log into one row per user and
  snapshot date (``as_of``): journey features observed strictly before
  ``as_of`` (touches per channel, sessions, page views, quote requests,
  phone calls, call-back speed, device, days since first and last touch) and
  the label ``converted`` (a first conversion in the ``horizon_days`` after
  ``as_of``). Users who converted before ``as_of`` are not at risk and are
  left out. The grouping runs as DuckDB SQL.
- :func:`churn_features` does the same for customers from a transactions
  table (recency, frequency, tenure, spend) with the label ``churned`` (no
  purchase in the ``horizon_days`` after ``as_of``).
- :func:`fit_propensity` fits a statsmodels ``Logit`` and evaluates it on a
  time-based holdout: training rows are snapshots whose label window closes
  before ``split_date``, test rows are snapshots on or after it, so the model
  never sees the future it is scored on. AUC (Mann–Whitney) with a DeLong
  interval, a decile calibration table, and the drivers as odds ratios with
  intervals. When the classes are perfectly separated (or the fit does not
  converge) the model is refitted with a weak ridge penalty (a N(0, 1) prior
  on standardised coefficients) and its intervals come from the penalised
  information; the result says so. Every fit carries a ``status`` (``"ok"``;
  ``"boundary"`` when the classes are separated and the maximum-likelihood
  coefficients run to infinity; ``"not_converged"``; ``"not_identified"`` when
  the information matrix is singular) and plain-language ``warnings``, emits a
  :class:`~journeylab.core.errors.ModelWarning` when not ok, and says so on the
  first line of its summary. Data that cannot support a model at all (no user
  at risk, a single outcome class, fewer than ``MIN_EVENTS`` of either
  outcome in training) raise :class:`~journeylab.core.errors.NotComputableError`
  with the reason; wrap the call in
  :func:`journeylab.core.model_checks.computable_or_reason` to get a result that
  prints that reason instead.

Which touch to offer next is :func:`journeylab.attribution.next_best_touchpoint`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core import sql as engine
from journeylab.core.errors import (
    DataError,
    ModelWarning,
    NotComputableError,
    ParameterError,
    SchemaError,
    check_in,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct, fmt_pp
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.timeparse import to_utc_timestamp

__all__ = [
    "propensity_features",
    "churn_features",
    "fit_propensity",
    "auc_delong",
    "PropensityResult",
]

#: Fewest training rows of each outcome a propensity model is fitted on (below that the
#: data cannot support one: Peduzzi et al. 1996 ask for about 10 events per predictor).
MIN_EVENTS = 10

Target = Literal["converted", "churned"]
Holdout = Literal["time", "random", "none"]

#: Columns of a feature table that are identifiers, dates or labels, never predictors.
_NOT_PREDICTORS = {"user_id", "as_of", "converted", "churned", "first_touch", "first_purchase"}
_TOUCH_EVENTS = ("ad_impression", "site_visit", "phone_call")
_COUNTED_EVENTS = {
    "service_page_view": "service_page_views",
    "quote_request": "quote_requests",
    "phone_call": "phone_calls",
    "booking_started": "booking_starts",
}


def _as_of_list(as_of: Any) -> list[pd.Timestamp]:
    values = (
        [as_of]
        if isinstance(as_of, (str, pd.Timestamp)) or not isinstance(as_of, Sequence)
        else list(as_of)
    )
    out = [to_utc_timestamp(v, "as_of") for v in values]
    if not out:
        raise ParameterError("as_of is empty; give one date or a list of snapshot dates.")
    return sorted(set(out))


def _end(observed_until: Any, timestamps: pd.Series) -> pd.Timestamp:
    if observed_until is None:
        return timestamps.max()
    return to_utc_timestamp(observed_until, "observed_until")


def _snapshot_frame(dates: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"as_of": pd.to_datetime(dates, utc=True).astype("datetime64[us, UTC]")})


def _check_horizon(
    dates: list[pd.Timestamp], horizon_days: float, data_end: pd.Timestamp, what: str
) -> None:
    check_range("horizon_days", horizon_days, low=0)
    late = [
        d for d in dates if d + pd.Timedelta(days=horizon_days) > data_end + pd.Timedelta(seconds=1)
    ]
    if late:
        raise ParameterError(
            f"as_of {late[0].date()} + horizon_days ({horizon_days:g}) runs past the end of the {what} "
            f"({data_end}); its labels would be incomplete. Use snapshot dates up to "
            f"{(data_end - pd.Timedelta(days=horizon_days)).date()} or a shorter horizon."
        )


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    with warnings.catch_warnings():
        # duckdb's pandas conversion uses a keyword pandas 3.1 deprecates; nothing to act on here.
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        return con.execute(sql, params).df()


def _sql_name(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(text).lower()).strip("_") or "none"


def propensity_features(
    events: pd.DataFrame,
    *,
    as_of: Any,
    horizon_days: float = 30,
    users: pd.DataFrame | None = None,
    conversion_event: str = "booking_completed",
    touch_events: Sequence[str] = _TOUCH_EVENTS,
    slow_minutes: float = 60,
    active_days: float | None = None,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Journey features per user at one or more snapshot dates, with the conversion label.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``; ``channel``,
        ``session_id``, ``device``, ``response_minutes`` are used when present).
    as_of : date or list of dates
        Snapshot dates. Features use events strictly before ``as_of``; several
        dates give several rows per user (one per snapshot where the user is at risk).
    horizon_days : float
        Label window: ``converted`` is 1 when the user's first ``conversion_event``
        falls in ``[as_of, as_of + horizon_days)``.
    users : pandas.DataFrame, optional
        One row per user; its ``device`` (and ``region``) replace the event-log values.
    conversion_event : str
        The event that counts as converting.
    touch_events : sequence of str
        Marketing touches counted per channel (``touches_<channel>``).
    slow_minutes : float
        A call-back slower than this marks ``slow_callback``.
    active_days : float, optional
        Keep only users with an event in the ``active_days`` before ``as_of``
        (default: every user seen before ``as_of`` who has not converted).
    observed_until : date, optional
        End of the observation period (default: the last event). A snapshot whose
        label window runs past it is refused, since its labels would be incomplete.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``as_of``, ``first_touch``, ``touches_<channel>``…, ``sessions``,
        ``service_page_views``, ``quote_requests``, ``phone_calls``, ``booking_starts``,
        ``had_callback``, ``slow_callback``, ``days_since_first_touch``,
        ``days_since_last_touch``, ``device``, ``converted``. ``attrs["horizon_days"]``
        records the label window for :func:`fit_propensity`.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["site_visit", "booking_completed", "site_visit"],
    ...                    "channel": ["email", None, "social"],
    ...                    "timestamp": pd.to_datetime(["2026-05-01", "2026-05-03", "2026-05-01"], utc=True)})
    >>> feats = propensity_features(ev, as_of="2026-05-02", horizon_days=5, observed_until="2026-05-31")
    >>> feats[["user_id", "converted"]].values.tolist()
    [['a', 1], ['b', 0]]
    """
    if not isinstance(events, pd.DataFrame):
        raise ParameterError(f"events must be a pandas DataFrame, not {type(events).__name__}.")
    require_columns(events, ["user_id", "timestamp", "event"], what="events")
    dates = _as_of_list(as_of)
    ev = events.copy()
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    _check_horizon(dates, horizon_days, _end(observed_until, ev["timestamp"]), "event log")
    for col, default in [
        ("channel", None),
        ("session_id", None),
        ("device", None),
        ("response_minutes", np.nan),
    ]:
        if col not in ev.columns:
            ev[col] = default
    ev = ev[
        ["user_id", "timestamp", "event", "channel", "session_id", "device", "response_minutes"]
    ]
    ev = ev.assign(
        user_id=ev["user_id"].astype(str),
        event=ev["event"].astype(str),
        channel=ev["channel"].astype("object"),
        session_id=ev["session_id"].astype("object"),
        device=ev["device"].astype("object"),
        response_minutes=pd.to_numeric(ev["response_minutes"], errors="coerce").astype(float),
        timestamp=ev["timestamp"].astype("datetime64[us, UTC]"),
    )
    touches = list(dict.fromkeys(touch_events))
    channels = sorted(
        str(c) for c in ev.loc[ev["event"].isin(touches), "channel"].dropna().unique()
    )
    touch_list = quote_list(touches)
    per_channel = ",\n".join(
        f"count(*) FILTER (WHERE list_contains({touch_list}, event) AND channel = ?) "
        f"AS {quote_ident('touches_' + _sql_name(c))}"
        for c in channels
    )
    # Events already counted as touches per channel (phone calls) are not counted twice.
    counted_events = {e: name for e, name in _COUNTED_EVENTS.items() if e not in touches}
    counted = ",\n".join(
        f"count(*) FILTER (WHERE event = {quote_literal(e)}) AS {quote_ident(name)}"
        for e, name in counted_events.items()
    )
    snaps = _snapshot_frame(dates)
    with engine.connect() as con:
        con.register("ev", ev)
        con.register("snaps", snaps)
        sql = f"""
            WITH conv AS (
                SELECT user_id, min(timestamp) AS first_conversion FROM ev WHERE event = ? GROUP BY user_id
            ),
            past AS (
                SELECT s.as_of, e.* FROM ev e JOIN snaps s ON e.timestamp < s.as_of
            ),
            feats AS (
                SELECT as_of, user_id, min(timestamp) AS first_touch,
                    {per_channel + "," if per_channel else ""}
                    count(DISTINCT session_id) AS sessions,
                    {counted + "," if counted else ""}
                    max(CASE WHEN event = 'callback' THEN 1 ELSE 0 END) AS had_callback,
                    max(CASE WHEN event = 'callback' AND response_minutes > ? THEN 1 ELSE 0 END) AS slow_callback,
                    date_diff('second', min(timestamp), as_of) / 86400.0 AS days_since_first_touch,
                    date_diff('second', max(timestamp), as_of) / 86400.0 AS days_since_last_touch,
                    arg_max(device, timestamp) AS device
                FROM past GROUP BY as_of, user_id
            )
            SELECT f.*,
                CASE WHEN c.first_conversion < f.as_of + to_microseconds(CAST(? * 86400e6 AS BIGINT))
                     THEN 1 ELSE 0 END AS converted
            FROM feats f LEFT JOIN conv c USING (user_id)
            WHERE (c.first_conversion IS NULL OR c.first_conversion >= f.as_of)
              AND (? IS NULL OR f.days_since_last_touch <= ?)
            ORDER BY f.as_of, f.user_id
        """
        active = None if active_days is None else float(active_days)
        params = [
            conversion_event,
            *channels,
            float(slow_minutes),
            float(horizon_days),
            active,
            active,
        ]
        table = _fetch(con, sql, params)
    if table.empty:
        last = max(dates)
        seen = int((ev.groupby("user_id")["timestamp"].min() < last).sum())
        converted = int(
            (
                ev.loc[ev["event"] == conversion_event].groupby("user_id")["timestamp"].min() < last
            ).sum()
        )
        raise NotComputableError(
            f"No user is at risk at the snapshot dates ({min(dates).date()} to {last.date()}): every user "
            f"either has no event before them or had already made a '{conversion_event}' "
            f"({seen:,} users seen, {converted:,} already converted). With purchase-only data every "
            "customer converts at their first event, so there is no one left to predict."
        )
    if users is not None:
        require_columns(users, ["user_id"], what="users")
        extra = [c for c in ("device", "region") if c in users.columns]
        lookup = (
            users.assign(user_id=users["user_id"].astype(str))
            .drop_duplicates("user_id")
            .set_index("user_id")
        )
        for col in extra:
            table[col] = table["user_id"].map(lookup[col]).astype("object")
    count_cols = [c for c in table.columns if c.startswith("touches_")] + [
        "sessions",
        *counted_events.values(),
        "had_callback",
        "slow_callback",
        "converted",
    ]
    table[count_cols] = table[count_cols].astype("int64")
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True)
    table["first_touch"] = pd.to_datetime(table["first_touch"], utc=True)
    if table["device"].isna().all():
        table = table.drop(columns="device")
    table.attrs["horizon_days"] = float(horizon_days)
    table.attrs["target"] = "converted"
    return table


def churn_features(
    transactions: pd.DataFrame,
    *,
    as_of: Any,
    horizon_days: float = 90,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Purchase-history features per customer at snapshot dates, with the churn label.

    A customer is at risk at ``as_of`` when they bought at least once before it;
    ``churned`` is 1 when they make no purchase in ``[as_of, as_of + horizon_days)``.

    Parameters
    ----------
    transactions : pandas.DataFrame
        ``user_id``, ``timestamp``, ``value`` (one row per purchase).
    as_of : date or list of dates
        Snapshot dates.
    horizon_days : float
        Length of the churn window.
    observed_until : date, optional
        End of the observation period (default: the last purchase).

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``as_of``, ``first_purchase``, ``purchases``, ``recency_days``,
        ``tenure_days``, ``mean_value``, ``total_value``, ``churned``.

    Examples
    --------
    >>> tx = pd.DataFrame({"user_id": ["a", "a", "b"], "value": [10.0, 20.0, 5.0],
    ...                    "timestamp": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-01-05"], utc=True)})
    >>> feats = churn_features(tx, as_of="2026-02-01", horizon_days=30, observed_until="2026-03-31")
    >>> feats[["user_id", "churned"]].values.tolist()
    [['a', 0], ['b', 1]]
    """
    if not isinstance(transactions, pd.DataFrame):
        raise ParameterError(
            f"transactions must be a pandas DataFrame, not {type(transactions).__name__}."
        )
    require_columns(transactions, ["user_id", "timestamp", "value"], what="transactions")
    dates = _as_of_list(as_of)
    tx = pd.DataFrame(
        {
            "user_id": transactions["user_id"].astype(str),
            "timestamp": pd.to_datetime(transactions["timestamp"], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "value": pd.to_numeric(transactions["value"], errors="coerce").astype(float),
        }
    )
    _check_horizon(dates, horizon_days, _end(observed_until, tx["timestamp"]), "transactions")
    with engine.connect() as con:
        con.register("tx", tx)
        con.register("snaps", _snapshot_frame(dates))
        table = _fetch(
            con,
            """
            WITH joined AS (SELECT s.as_of, t.* FROM tx t JOIN snaps s ON t.timestamp < s.as_of),
            past AS (
                SELECT as_of, user_id, min(timestamp) AS first_purchase, count(*) AS purchases,
                    date_diff('second', max(timestamp), as_of) / 86400.0 AS recency_days,
                    date_diff('second', min(timestamp), as_of) / 86400.0 AS tenure_days,
                    avg(value) AS mean_value, sum(value) AS total_value
                FROM joined GROUP BY as_of, user_id
            ),
            future AS (
                SELECT s.as_of, t.user_id, count(*) AS n_future FROM tx t JOIN snaps s
                  ON t.timestamp >= s.as_of AND t.timestamp < s.as_of + to_microseconds(CAST(? * 86400e6 AS BIGINT))
                GROUP BY s.as_of, t.user_id
            )
            SELECT p.*, CASE WHEN f.n_future IS NULL THEN 1 ELSE 0 END AS churned
            FROM past p LEFT JOIN future f USING (as_of, user_id)
            ORDER BY p.as_of, p.user_id
            """,
            [float(horizon_days)],
        )
    if table.empty:
        raise NotComputableError("No customer bought anything before the snapshot dates.")
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True)
    table["first_purchase"] = pd.to_datetime(table["first_purchase"], utc=True)
    table[["purchases", "churned"]] = table[["purchases", "churned"]].astype("int64")
    table.attrs["horizon_days"] = float(horizon_days)
    table.attrs["target"] = "churned"
    return table


# ---------------------------------------------------------------------------
# Evaluation helpers
# ---------------------------------------------------------------------------
def auc_delong(y: Any, score: Any, *, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """AUC with its DeLong standard error and normal interval.

    The AUC is the Mann–Whitney statistic ``U / (n1 n0)`` (ties count one
    half); the variance follows DeLong, DeLong & Clarke-Pearson (1988) with the
    midrank algorithm of Sun & Xu (2014). The interval is clipped to [0, 1].

    Returns
    -------
    tuple of float
        ``(auc, se, ci_low, ci_high)``.

    Examples
    --------
    >>> auc_delong([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])[0]
    0.75
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise NotComputableError(
            f"AUC needs both outcomes; the evaluation rows have {m} positives and {n} negatives."
        )
    tz = stats.rankdata(np.concatenate([pos, neg]))
    tx, ty = stats.rankdata(pos), stats.rankdata(neg)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    auc = float(v10.mean())
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    se = float(np.sqrt(var))
    z = stats.norm.ppf(1 - alpha / 2)
    return auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se)


def _calibration(y: np.ndarray, p: np.ndarray, bins: int, alpha: float) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    ranks = stats.rankdata(p, method="ordinal")
    decile = np.minimum((ranks - 1) * bins // len(p), bins - 1) + 1
    frame = pd.DataFrame({"bin": decile, "p": p, "y": y})
    cal = frame.groupby("bin").agg(
        n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"), events=("y", "sum")
    )
    lo, hi = proportion_confint(
        cal["events"].to_numpy(), cal["n"].to_numpy(), alpha=alpha, method="wilson"
    )
    # The Wilson bounds at 0 or n events come out a rounding error beyond the
    # observed rate (1.7e-18 above 0); pin them so low <= observed <= high.
    observed = cal["observed"].to_numpy()
    return cal.assign(
        observed_ci_low=np.minimum(lo, observed), observed_ci_high=np.maximum(hi, observed)
    ).reset_index()


# ---------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class PropensityResult(Result):
    """A fitted propensity model with its holdout evaluation.

    Attributes
    ----------
    target : str
    params : pandas.Series
        Log-odds coefficients (``const`` first) on the original units.
    cov : pandas.DataFrame
        Their covariance.
    drivers : pandas.DataFrame
        One row per predictor: ``coef``, ``se``, ``p_value``, ``odds_ratio`` with
        ``or_ci_low``/``or_ci_high`` (per unit), ``sd`` and ``odds_ratio_per_sd``
        with its interval, ``binary``; strongest (by |coef × sd|) first.
    auc, auc_se, auc_ci : float, float, tuple
        Holdout AUC (Mann–Whitney) and DeLong interval.
    calibration : pandas.DataFrame
        Deciles of predicted probability: ``n``, ``predicted``, ``observed`` (Wilson interval).
    predictions : pandas.DataFrame
        The evaluation rows: ``user_id`` / ``as_of`` when present, ``y``, ``p``.
    method : str
        ``"logit (maximum likelihood)"`` or ``"ridge logit (…)"`` after separation.
    model_ : statsmodels results or None
        The maximum-likelihood fit when it was used.
    """

    target: str
    params: pd.Series
    cov: pd.DataFrame
    drivers: pd.DataFrame
    auc: float
    auc_se: float
    auc_ci: tuple[float, float]
    auc_train: float
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    method: str
    holdout: str
    split: str
    n_train: int
    n_test: int
    rate_train: float
    rate_test: float
    alpha: float
    design: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_: Any = None
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)
    title: str = "Propensity model"

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Predicted probability of the target for each row of a feature table."""
        x = _design(features, self.design)
        return pd.Series(
            _sigmoid(x.to_numpy(float) @ self.params.to_numpy()), index=features.index, name="p"
        )

    def to_frame(self) -> pd.DataFrame:
        """Return the drivers table (odds ratios with intervals), strongest first."""
        return self.drivers.copy()

    def display_frame(self) -> pd.DataFrame:
        """Format the drivers for readers."""
        d = self.drivers
        return pd.DataFrame(
            {
                "driver": d["predictor"],
                "odds ratio": d["odds_ratio"].map(fmt_num),
                f"{1 - self.alpha:.0%} CI": [
                    fmt_ci(a, b) for a, b in zip(d["or_ci_low"], d["or_ci_high"], strict=True)
                ],
                "per SD": d["odds_ratio_per_sd"].map(fmt_num),
                "p": d["p_value"].map(lambda v: "< 0.0001" if v < 1e-4 else fmt_num(v)),
            }
        )

    def driver_sentences(self, top: int = 3) -> list[str]:
        """Describe the strongest significant drivers in plain language."""
        verb = {"converted": "converting", "churned": "churning"}.get(self.target, self.target)

        def change(ratio: float, lo: float, hi: float) -> str:
            if ratio >= 1:
                return f"multiplies the odds of {verb} by {fmt_num(ratio)} {fmt_ci(lo, hi)}"
            return f"lowers the odds of {verb} by {fmt_pct(1 - ratio, 0)} (odds ratio {fmt_num(ratio)} {fmt_ci(lo, hi)})"

        out = []
        for _, r in self.drivers[self.drivers["p_value"] < self.alpha].head(top).iterrows():
            name = str(r["predictor"]).replace("_", " ")
            if r["binary"]:
                out.append(
                    f"{name.capitalize()} (yes vs no) {change(r['odds_ratio'], r['or_ci_low'], r['or_ci_high'])}."
                )
            else:
                text = (
                    f"{name.capitalize()}: one standard deviation more ({fmt_num(r['sd'])}) "
                    f"{change(r['odds_ratio_per_sd'], r['or_per_sd_ci_low'], r['or_per_sd_ci_high'])}"
                )
                if r["sd"] < 20:
                    text += f"; per +1, odds ratio {fmt_num(r['odds_ratio'])}"
                out.append(text + ".")
        return out

    def summary(self) -> str:
        """Holdout discrimination, calibration and the strongest drivers."""
        level = f"{1 - self.alpha:.0%}"
        cal = self.calibration
        gap = float(np.average(np.abs(cal["observed"] - cal["predicted"]), weights=cal["n"]))
        headline = (
            "Status: ok (maximum likelihood converged; every coefficient identified)."
            if self.status == "ok"
            # the ridge refit is the remedy already applied: say what happened, not "do not use"
            else f"Status: {self.status}. {self.warnings[0][:1].upper()}{self.warnings[0][1:]}"
        )
        lines = [
            headline,
            f"Propensity of '{self.target}' ({self.method}), trained on {self.n_train:,} rows "
            f"(rate {fmt_pct(self.rate_train)}), evaluated on {self.n_test:,} {self.holdout} holdout rows "
            f"(rate {fmt_pct(self.rate_test)}; {self.split}).",
            f"Holdout AUC {self.auc:.3f} {fmt_ci(*self.auc_ci, fmt=lambda v: f'{v:.3f}')} ({level}, DeLong); "
            f"training AUC {self.auc_train:.3f}.",
            f"Calibration: predicted {fmt_pct(self.predictions['p'].mean())} vs observed "
            f"{fmt_pct(self.predictions['y'].mean())} overall; mean gap per decile {fmt_pp(gap)}.",
        ]
        lines += self.driver_sentences()
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None):
        """Calibration plot: observed vs predicted rate per decile, with Wilson intervals."""
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(5.6, 5.2))
        cal = self.calibration
        top = float(max(cal["observed_ci_high"].max(), cal["predicted"].max())) * 1.08
        ax.plot([0, top], [0, top], color="0.6", ls="--", lw=1, label="perfect calibration")
        # Error-bar lengths clipped at 0: matplotlib rejects the -1e-18 that
        # floating point leaves when a decile has no (or only) events.
        below = (cal["observed"] - cal["observed_ci_low"]).clip(lower=0)
        above = (cal["observed_ci_high"] - cal["observed"]).clip(lower=0)
        ax.errorbar(
            cal["predicted"],
            cal["observed"],
            yerr=[below, above],
            fmt="o-",
            color=PALETTE[0],
            capsize=3,
            lw=1.5,
            label="holdout deciles",
        )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        percent_axis(ax, "x")
        percent_axis(ax, "y")
        ax.set_xlabel("predicted probability (decile mean)")
        ax.set_ylabel(f"observed rate ({1 - self.alpha:.0%} Wilson interval)")
        ax.set_title(f"Calibration of '{self.target}' — AUC {self.auc:.3f}")
        ax.legend(loc="upper left")
        return ax

    def plot_drivers(self, ax=None, top: int = 12):
        """Forest plot of odds ratios per standard deviation (binary drivers: yes vs no)."""
        from journeylab.core.viz import PALETTE, new_axes

        d = self.drivers.head(top).iloc[::-1]
        binary = d["binary"].to_numpy()
        ratio = np.where(binary, d["odds_ratio"], d["odds_ratio_per_sd"])
        lo = np.where(binary, d["or_ci_low"], d["or_per_sd_ci_low"])
        hi = np.where(binary, d["or_ci_high"], d["or_per_sd_ci_high"])
        ax = new_axes(ax, figsize=(7, 0.42 * len(d) + 1.6))
        y = np.arange(len(d))
        colours = [PALETTE[2] if r >= 1 else PALETTE[3] for r in ratio]
        ax.hlines(y, lo, hi, color="0.55", lw=2)
        ax.scatter(ratio, y, color=colours, zorder=3, s=40)
        ax.axvline(1, color="0.3", lw=0.8)
        ax.set_xscale("log")
        labels = [
            f"{p} ({'yes vs no' if b else 'per SD'})"
            for p, b in zip(d["predictor"], binary, strict=True)
        ]
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"odds ratio for '{self.target}' ({1 - self.alpha:.0%} interval, log scale)")
        ax.set_title("Strongest drivers")
        return ax


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def _design(features: pd.DataFrame, design: dict) -> pd.DataFrame:
    """Build the model matrix for ``features`` from a fitted design (columns, dummy levels)."""
    cols = {"const": np.ones(len(features))}
    for name in design["numeric"]:
        if name not in features.columns:
            raise SchemaError(
                f"The feature table lacks predictor {name!r}{did_you_mean(name, features.columns)}.",
                column=name,
                missing_columns=[name],
            )
        cols[name] = pd.to_numeric(features[name], errors="coerce").astype(float).to_numpy()
    for name, levels in design["categorical"].items():
        values = features[name].astype("object").to_numpy()
        for level in levels:
            cols[f"{name}[{level}]"] = (values == level).astype(float)
    x = pd.DataFrame(cols, index=features.index)
    return x[design["columns"]]


def _choose_predictors(
    features: pd.DataFrame, target: str, predictors: Sequence[str] | None
) -> tuple[list, list]:
    if predictors is None:
        candidates = [c for c in features.columns if c not in _NOT_PREDICTORS and c != target]
    else:
        candidates = list(predictors)
        require_columns(features, candidates, what="features")
    numeric, categorical = [], []
    for c in candidates:
        s = features[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            numeric.append(c)
        elif not pd.api.types.is_datetime64_any_dtype(s):
            categorical.append(c)
    return numeric, categorical


def _split(
    features: pd.DataFrame,
    *,
    holdout: str,
    split_date: Any,
    test_size: float,
    seed: int,
    target: str,
):
    n = len(features)
    if holdout == "none":
        mask = np.ones(n, dtype=bool)
        return mask, mask, "in-sample (no holdout: optimistic)"
    if holdout == "random":
        check_range("test_size", test_size, low=0, high=1)
        rng = np.random.default_rng(seed)
        test = rng.random(n) < test_size
        return ~test, test, f"random {fmt_pct(test_size, 0)} of rows (seed {seed})"
    if "as_of" not in features.columns:
        raise SchemaError(
            "A time-based holdout needs the 'as_of' snapshot column of propensity_features/churn_features.",
            column="as_of",
            missing_columns=["as_of"],
            hint="pass holdout='random', or build features with as_of=[...]",
        )
    as_of = pd.to_datetime(features["as_of"], utc=True)
    dates = sorted(as_of.unique())
    if split_date is None:
        if len(dates) < 2:
            raise ParameterError(
                "A time-based holdout needs features at two or more as_of dates (one snapshot only: "
                f"{pd.Timestamp(dates[0]).date()}); pass as_of=[...] to the feature builder, or holdout='random'."
            )
        split = pd.Timestamp(dates[-1])
    else:
        split = to_utc_timestamp(split_date, "split_date")
    horizon = pd.Timedelta(days=float(features.attrs.get("horizon_days", 0.0)))
    # Training labels must be fully observed before the test period begins.
    train = (as_of + horizon <= split).to_numpy()
    test = (as_of >= split).to_numpy()
    if not train.any() or not test.any():
        raise NotComputableError(
            f"The time split at {split.date()} leaves {int(train.sum())} training and {int(test.sum())} test rows "
            f"(training snapshots must end their {horizon.days}-day label window by the split; test snapshots "
            f"start on or after it). Snapshot dates: {[str(pd.Timestamp(d).date()) for d in dates]}."
        )
    return (
        train,
        test,
        f"train snapshots whose label window ends by {split.date()}, test snapshots from {split.date()}",
    )


def _information(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    # einsum rather than a BLAS product: for a few dozen columns it is as fast and does not
    # stall on a busy machine's BLAS threads.
    return np.einsum("ij,i,ik->jk", z, p * (1 - p), z)


def _newton(
    z: np.ndarray, y: np.ndarray, penalty: np.ndarray, *, maxiter: int, limit: float = np.inf
) -> tuple[np.ndarray, bool]:
    """Maximise ``loglik(γ) − ½ Σ penalty_j γ_j²`` by Newton–Raphson with step halving.

    Stops early (not converged) once a slope exceeds ``limit``: a sign of separation.
    """

    def objective(g: np.ndarray) -> float:
        eta = z @ g
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(penalty * g * g))

    gamma = np.zeros(z.shape[1])
    gamma[0] = np.log(y.mean() / (1 - y.mean()))
    current = objective(gamma)
    for _ in range(maxiter):
        p = _sigmoid(z @ gamma)
        grad = z.T @ (y - p) - penalty * gamma
        step = np.linalg.lstsq(_information(z, p) + np.diag(penalty), grad, rcond=None)[0]
        for _ in range(30):  # step halving keeps every step an ascent step
            candidate = objective(gamma + step)
            if candidate >= current - 1e-12:
                break
            step = step / 2
        gamma, current = gamma + step, candidate
        if np.max(np.abs(step)) < 1e-9:
            return gamma, True
        if np.max(np.abs(gamma[1:]), initial=0.0) > limit:
            return gamma, False
    return gamma, False


def _standardise(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Standardised design (constant first) and the map ``A`` with ``beta = A @ gamma``."""
    xv = x.to_numpy(float)
    mean = xv[:, 1:].mean(axis=0)
    sd = xv[:, 1:].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = np.column_stack([np.ones(len(xv)), (xv[:, 1:] - mean) / sd])
    a = np.eye(z.shape[1])
    a[1:, 1:] = np.diag(1 / sd)
    a[0, 1:] = -mean / sd
    return z, a


#: Condition number of the standardised information matrix above which coefficients are
#: treated as not identified (predictors collinear for practical purposes).
MAX_CONDITION = 1e8


def _fit_logit(
    y: np.ndarray, x: pd.DataFrame
) -> tuple[pd.Series | None, pd.DataFrame | None, Any, str | None, str]:
    """Maximum-likelihood Logit (statsmodels): params, cov, results, the reason it failed, and a status.

    A Newton pre-fit on standardised predictors detects separation (coefficients
    that keep growing) and gives statsmodels its starting values. The status
    is ``"ok"``, ``"boundary"`` (separation: the maximum lies at infinity),
    ``"not_converged"`` or ``"not_identified"`` (singular information).
    """
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        HessianInversionWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    z, a = _standardise(x)
    gamma, converged = _newton(z, y, np.zeros(z.shape[1]), maxiter=50, limit=15.0)
    xv = x.to_numpy(float)[:, 1:]
    # A log-odds swing above 20 across a predictor's observed range means fitted
    # probabilities of ~1e-9 for some group: the likelihood is still climbing (quasi-separation)
    # even when the Newton steps have become numerically tiny.
    swing = np.abs((a @ gamma)[1:]) * (xv.max(axis=0) - xv.min(axis=0))
    if np.max(swing, initial=0.0) > 20 or np.max(np.abs(gamma[1:]), initial=0.0) > 15:
        return (
            None,
            None,
            None,
            "the outcome is (quasi-)separated by the predictors: the likelihood has no maximum",
            "boundary",
        )
    if not converged:
        return None, None, None, "the maximum-likelihood fit did not converge", "not_converged"
    information = _information(z, _sigmoid(z @ gamma))
    condition = np.linalg.cond(information)
    if not condition < MAX_CONDITION:
        return (
            None,
            None,
            None,
            f"the information matrix is singular (condition number {condition:.2g}): some predictors "
            "are (nearly) collinear, so their coefficients are not identified",
            "not_identified",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = Logit(y, x).fit(start_params=a @ gamma, method="newton", maxiter=35, disp=0)
        except PerfectSeparationError:
            return (
                None,
                None,
                None,
                "the outcome is perfectly separated by the predictors",
                "boundary",
            )
        except np.linalg.LinAlgError:
            return (
                None,
                None,
                None,
                "the information matrix is singular (collinear predictors)",
                "not_identified",
            )
    kinds = {type(w.message) for w in caught}
    if PerfectSeparationWarning in kinds:
        return None, None, None, "the outcome is perfectly separated by the predictors", "boundary"
    if HessianInversionWarning in kinds or not np.all(np.isfinite(res.bse)):
        return (
            None,
            None,
            None,
            "the information matrix could not be inverted (collinear predictors)",
            "not_identified",
        )
    if ConvergenceWarning in kinds or not res.mle_retvals.get("converged", True):
        return None, None, None, "the maximum-likelihood fit did not converge", "not_converged"
    return res.params, res.cov_params(), res, None, "ok"


def _fit_ridge(y: np.ndarray, x: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Ridge logit on standardised predictors (prior N(0, 1) per SD), mapped back to original units.

    The covariance is the inverse of the penalised information at the optimum.
    """
    z, a = _standardise(x)
    penalty = np.r_[0.0, np.ones(z.shape[1] - 1)]
    gamma, _ = _newton(z, y, penalty, maxiter=200)
    cov_gamma = np.linalg.inv(_information(z, _sigmoid(z @ gamma)) + np.diag(penalty))
    beta = a @ gamma
    cov = a @ cov_gamma @ a.T
    return pd.Series(beta, index=x.columns), pd.DataFrame(cov, index=x.columns, columns=x.columns)


def fit_propensity(
    features: pd.DataFrame,
    target: Target | str = "converted",
    *,
    holdout: Holdout = "time",
    split_date: Any = None,
    predictors: Sequence[str] | None = None,
    test_size: float = 0.25,
    alpha: float = 0.05,
    bins: int = 10,
    seed: int = 0,
) -> PropensityResult:
    """Fit a logistic propensity model and evaluate it on a holdout.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`propensity_features` or :func:`churn_features` (or any table
        with a 0/1 ``target`` column and predictors).
    target : {"converted", "churned"} or str
        The 0/1 outcome column.
    holdout : {"time", "random", "none"}
        ``"time"``: train on snapshots whose label window ends by ``split_date``,
        test on snapshots from ``split_date`` on (default split: the last snapshot).
        ``"random"``: a seeded random ``test_size`` share. ``"none"``: in-sample (optimistic).
    split_date : date, optional
        Start of the test period for the time holdout.
    predictors : sequence of str, optional
        Columns to use; default every numeric and categorical column that is not an
        id, date or label. Categorical columns become dummies against their most
        frequent level; columns constant in training are dropped (and reported).
    test_size : float
        Test share for the random holdout.
    alpha : float
        1 − confidence level for every interval.
    bins : int
        Calibration bins (deciles by default).
    seed : int
        Seed of the random holdout.

    Returns
    -------
    PropensityResult
        ``.auc`` and ``.auc_ci`` on the holdout, ``.calibration``, ``.drivers``,
        ``.plot()`` (calibration) and ``.plot_drivers()``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> feats = pd.DataFrame({"x": x, "converted": (rng.random(400) < 1 / (1 + np.exp(-2 * x))).astype(int)})
    >>> res = fit_propensity(feats, holdout="random", seed=1)
    >>> res.auc > 0.75
    True
    """
    if not isinstance(features, pd.DataFrame):
        raise ParameterError(f"features must be a pandas DataFrame, not {type(features).__name__}.")
    check_in("holdout", holdout, ["time", "random", "none"])
    check_range("alpha", alpha, low=0, high=1)
    require_columns(features, [target], what="features")
    y_all = pd.to_numeric(features[target], errors="coerce")
    bad = y_all.isna() | ~y_all.isin([0, 1])
    if bad.any():
        raise DataError(
            f"The target {target!r} must be 0 or 1 in every row.",
            column=target,
            rows=list(np.flatnonzero(bad.to_numpy())),
        )
    numeric, categorical = _choose_predictors(features, target, predictors)
    if not numeric and not categorical:
        raise ParameterError("No predictor columns: pass predictors=[...] or build features first.")
    train, test, split_text = _split(
        features,
        holdout=holdout,
        split_date=split_date,
        test_size=test_size,
        seed=seed,
        target=target,
    )
    notes: list[str] = []

    tr = features.loc[train]
    levels = {}
    for c in categorical:
        counts = tr[c].astype("object").value_counts()
        if len(counts) > 1:
            levels[c] = [lv for lv in counts.index[1:]]  # the most frequent level is the reference
            notes.append(f"{c}: reference level '{counts.index[0]}'.")
    design = {"numeric": numeric, "categorical": levels, "columns": []}
    design["columns"] = [
        "const",
        *numeric,
        *[f"{c}[{lv}]" for c, lvs in levels.items() for lv in lvs],
    ]
    x_all = _design(features, design)
    missing = x_all.isna().any(axis=1).to_numpy()
    if missing.any():
        notes.append(f"{int(missing.sum()):,} rows with missing predictor values were left out.")
        train, test = train & ~missing, test & ~missing
    x_train = x_all.loc[train]
    constant = [c for c in x_train.columns[1:] if x_train[c].nunique() <= 1]
    if constant:
        notes.append(f"Constant in training, dropped: {', '.join(constant)}.")
    seen: dict[bytes, str] = {}
    duplicated = []
    for c in x_train.columns[1:]:
        key = np.ascontiguousarray(x_train[c].to_numpy(float)).tobytes()
        if key in seen and c not in constant:
            duplicated.append(c)
        seen.setdefault(key, c)
    if duplicated:
        notes.append(
            f"Identical to another predictor in training, dropped: {', '.join(duplicated)}."
        )
    if constant or duplicated:
        design["columns"] = [
            c for c in design["columns"] if c not in constant and c not in duplicated
        ]
        x_all = x_all[design["columns"]]
        x_train = x_all.loc[train]
    y_train = y_all[train].to_numpy(float)
    y_test = y_all[test].to_numpy(float)
    if y_train.min() == y_train.max():
        raise NotComputableError(
            f"Every training row has {target} = {int(y_train[0])}; nothing to learn."
        )
    events = int(y_train.sum())
    fewer = min(events, len(y_train) - events)
    if fewer < MIN_EVENTS:
        outcome = 1 if events == fewer else 0
        raise NotComputableError(
            f"Only {fewer:,} of {len(y_train):,} training rows have {target} = {outcome}; a propensity "
            f"model needs at least {MIN_EVENTS} of each outcome. Use more snapshot dates or a longer horizon."
        )
    if y_test.size and y_test.min() == y_test.max():
        raise NotComputableError(
            f"Every test row has {target} = {int(y_test[0])}: the holdout cannot measure discrimination (AUC). "
            "Use another split_date or holdout='random'."
        )
    n_predictors = len(x_train.columns) - 1
    if fewer < 10 * n_predictors:
        notes.append(
            f"{fewer:,} training rows of the rarer outcome for {n_predictors} predictors (fewer than 10 per "
            "predictor): coefficients may be unstable."
        )

    params, cov, model, reason, status = _fit_logit(y_train, x_train)
    fit_warnings: list[str] = []
    if params is None:
        params, cov = _fit_ridge(y_train, x_train)
        method = "ridge logit (N(0, 1) prior per SD)"
        notes.append(
            f"Refitted with a weak ridge penalty because {reason}; intervals are approximate."
        )
        fit_warnings.append(
            f"{reason}; the coefficients shown come from a ridge refit (N(0, 1) prior per SD) and their "
            "intervals are approximate."
        )
        warnings.warn(
            f"propensity of {target!r}: status {status!r}. {fit_warnings[0]}",
            ModelWarning,
            stacklevel=2,
        )
    else:
        method = "logit (maximum likelihood)"

    p_train = _sigmoid(x_train.to_numpy(float) @ params.to_numpy())
    p_test = _sigmoid(x_all.loc[test].to_numpy(float) @ params.to_numpy())
    auc, se, lo, hi = auc_delong(y_test, p_test, alpha=alpha)
    auc_train = auc_delong(y_train, p_train, alpha=alpha)[0]

    z = stats.norm.ppf(1 - alpha / 2)
    se_all = np.sqrt(np.diag(cov.to_numpy()))
    coef = params.to_numpy()
    sd = x_train.std(axis=0, ddof=0).to_numpy()
    drivers = pd.DataFrame(
        {
            "predictor": params.index,
            "coef": coef,
            "se": se_all,
            "z": coef / se_all,
            "p_value": 2 * stats.norm.sf(np.abs(coef / se_all)),
            "odds_ratio": np.exp(coef),
            "or_ci_low": np.exp(coef - z * se_all),
            "or_ci_high": np.exp(coef + z * se_all),
            "sd": sd,
            "odds_ratio_per_sd": np.exp(coef * sd),
            "or_per_sd_ci_low": np.exp((coef - z * se_all) * sd),
            "or_per_sd_ci_high": np.exp((coef + z * se_all) * sd),
            "binary": [bool(set(np.unique(x_train[c])) <= {0.0, 1.0}) for c in params.index],
        }
    )
    drivers = drivers[drivers["predictor"] != "const"]
    # Strength as plotted: yes vs no for binary drivers, one standard deviation for the others.
    drivers = drivers.assign(
        _strength=np.abs(drivers["coef"] * np.where(drivers["binary"], 1.0, drivers["sd"]))
    )
    drivers = (
        drivers.sort_values("_strength", ascending=False)
        .drop(columns="_strength")
        .reset_index(drop=True)
    )

    ids = [c for c in ("user_id", "as_of") if c in features.columns]
    predictions = (
        features.loc[test, ids].assign(y=y_test.astype(int), p=p_test).reset_index(drop=True)
    )
    return PropensityResult(
        target=target,
        params=params,
        cov=cov,
        drivers=drivers,
        auc=auc,
        auc_se=se,
        auc_ci=(lo, hi),
        auc_train=auc_train,
        calibration=_calibration(y_test, p_test, bins, alpha),
        predictions=predictions,
        method=method,
        holdout=holdout,
        split=split_text,
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        rate_train=float(y_train.mean()),
        rate_test=float(y_test.mean()),
        alpha=alpha,
        design=design,
        notes=notes,
        model_=model,
        status=status,
        warnings=fit_warnings,
    )
