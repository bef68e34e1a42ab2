"""Sequential monitoring: always-valid p-values and confidence sequences.

Checking a fixed-horizon test every day and stopping at the first
``p < 0.05`` inflates false positives (about 25 % with 20 looks). The mixture
sequential probability ratio test (mSPRT, Johari, Koomen, Pekelis & Walsh,
2017/2022) with a normal mixture gives p-values and intervals that stay
valid however often you look and whenever you stop:

``Λ_n = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))``

where ``θ̂`` is the current difference of means, ``V`` its variance and
``τ`` the mixture's spread. The always-valid p-value is the running minimum
of ``min(1, 1/Λ_n)``; the confidence sequence is the running intersection of
``θ̂ ± sqrt(V (V + τ²) / τ² · (log((V + τ²) / V) - 2 log α))``.

The default ``τ² = V* (-2 log α + log(1 - 2 log α))`` makes the sequence
tightest at the planned horizon ``V*`` (Howard, Ramdas, McAuliffe & Sekhon,
2021, eq. (14) in this parametrisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import ParameterError, check_range, require_columns
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_p, fmt_pct, fmt_pp

__all__ = [
    "msprt",
    "default_mixture_variance",
    "sequential_test",
    "SequentialResult",
    "simulate_aa",
    "AASimulation",
]


def _signed(x: float) -> str:
    text = fmt_num(x)
    return text if text.startswith("-") or text == "–" else "+" + text


def _when(time) -> str:
    if isinstance(time, pd.Timestamp) and time == time.normalize():
        return time.strftime("%Y-%m-%d")
    return str(time)


def default_mixture_variance(horizon_variance, alpha: float = 0.05):
    """Mixture variance τ² that makes the confidence sequence tightest at ``horizon_variance``.

    Examples
    --------
    >>> round(float(default_mixture_variance(1.0)), 3)
    7.936
    """
    k = -2 * math.log(alpha)
    return np.asarray(horizon_variance, dtype=float) * (k + math.log(1 + k))


def msprt(diff, var, *, tau2, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Always-valid p-values and confidence sequence of a difference of means.

    Parameters
    ----------
    diff, var : array-like, shape (..., looks)
        The estimate and its variance at each look (cumulative data).
    tau2 : float or array broadcastable to ``diff[..., :1]``
        Variance of the normal mixture over effects.
    alpha : float
        Level of the confidence sequence.

    Returns
    -------
    p_value, cs_low, cs_high : arrays of the shape of ``diff``
        Running (monotone) always-valid p-value and confidence sequence.

    Examples
    --------
    >>> p, lo, hi = msprt([0.0, 0.5], [1.0, 0.5], tau2=1.0)
    >>> bool(p[1] <= p[0])
    True
    """
    check_range("alpha", alpha, low=0, high=1)
    diff = np.asarray(diff, dtype=float)
    var = np.asarray(var, dtype=float)
    tau2 = np.asarray(tau2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lr = 0.5 * np.log(var / (var + tau2)) + tau2 * diff**2 / (2 * var * (var + tau2))
        p = np.minimum(1.0, np.exp(-log_lr))
        half = np.sqrt(
            var * (var + tau2) / tau2 * (np.log((var + tau2) / var) - 2 * math.log(alpha))
        )
    p = np.where(np.isfinite(p), p, 1.0)
    low = np.where(np.isfinite(half), diff - half, -np.inf)
    high = np.where(np.isfinite(half), diff + half, np.inf)
    return (
        np.minimum.accumulate(p, axis=-1),
        np.maximum.accumulate(low, axis=-1),
        np.minimum.accumulate(high, axis=-1),
    )


@dataclass(repr=False)
class SequentialResult(Result):
    """Looks at a running experiment with always-valid inference.

    ``looks`` has one row per look: ``time``, ``n_control``, ``n_treatment``,
    ``control_mean``, ``treatment_mean``, ``abs_lift``, ``cs_low``,
    ``cs_high`` (confidence sequence), ``always_valid_p``, and the
    ``naive_p`` / ``naive_ci_*`` a fixed-horizon test would show at that look.
    """

    looks: pd.DataFrame
    metric: str
    treatment: str
    control: str
    alpha: float
    tau2: float
    binary: bool = False

    title = "Sequential monitoring"

    def to_frame(self) -> pd.DataFrame:
        """Return the looks table."""
        return self.looks.copy()

    def display_frame(self) -> pd.DataFrame:
        """Show the looks for readers: period, users per arm, rates or means, lift, intervals.

        A 0/1 metric reads as rates and a lift in percentage points; looks on
        calendar periods show the date the period starts, finer looks the time.
        """
        lk = self.looks
        binary = self.binary
        value = fmt_pct if binary else fmt_num
        lift = fmt_pp if binary else _signed
        interval = fmt_pp if binary else fmt_num
        times = pd.Series(lk["time"])
        if isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
            times
        ):
            daily = bool((times == times.dt.normalize()).all())
            when = times.dt.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M")
        else:
            when = times.astype(str)
        level = fmt_pct(1 - self.alpha, 0)
        return pd.DataFrame(
            {
                "look": np.arange(1, len(lk) + 1),
                "period starting": when.to_numpy(),
                f"users ({self.control})": lk["n_control"].map(fmt_num).to_numpy(),
                f"users ({self.treatment})": lk["n_treatment"].map(fmt_num).to_numpy(),
                f"{self.metric}: {self.control}": lk["control_mean"].map(value).to_numpy(),
                f"{self.metric}: {self.treatment}": lk["treatment_mean"].map(value).to_numpy(),
                "lift": lk["abs_lift"].map(lift).to_numpy(),
                f"{level} confidence sequence": [
                    fmt_ci(a, b, interval) if np.isfinite([a, b]).all() else "–"
                    for a, b in zip(lk["cs_low"], lk["cs_high"], strict=True)
                ],
                "always-valid p": lk["always_valid_p"].map(fmt_p).to_numpy(),
                "naive p (invalid when peeking)": lk["naive_p"].map(fmt_p).to_numpy(),
            }
        )

    def summary(self) -> str:
        """Where the always-valid inference stands, and when it crossed α."""
        last = self.looks.iloc[-1]
        crossed = self.looks.index[self.looks["always_valid_p"] < self.alpha]
        naive_crossed = self.looks.index[self.looks["naive_p"] < self.alpha]
        lines = [
            f"{self.treatment} vs {self.control} on {self.metric}, {len(self.looks)} looks "
            f"(mSPRT, normal mixture τ = {fmt_num(math.sqrt(self.tau2))}): latest lift "
            f"{fmt_num(last.abs_lift)}, {fmt_pct(1 - self.alpha, 0)} confidence sequence "
            f"[{fmt_num(last.cs_low)}, {fmt_num(last.cs_high)}], always-valid "
            f"{fmt_p(last.always_valid_p, with_p=True)}."
        ]
        if len(crossed):
            first = self.looks.loc[crossed[0]]
            lines.append(
                f"The always-valid p-value fell below {self.alpha:g} at look {crossed[0] + 1} "
                f"({_when(first.time)}); stopping there keeps the error rate at {self.alpha:g}."
            )
        else:
            lines.append(
                f"The always-valid p-value has not fallen below {self.alpha:g}: keep watching "
                "or stop for futility; no peeking penalty applies either way."
            )
        if len(naive_crossed) and (not len(crossed) or naive_crossed[0] < crossed[0]):
            lines.append(
                f"A naive fixed-horizon test would have shown p < {self.alpha:g} already at "
                f"look {naive_crossed[0] + 1}: a fixed-horizon p-value read at every look "
                "is not valid."
            )
        return "\n".join(lines)

    def plot(self, ax=None):
        """Lift over looks with the confidence sequence and the naive interval."""
        from matplotlib.ticker import MaxNLocator

        from journeylab.core.viz import PALETTE, new_axes

        ax = new_axes(ax, figsize=(8, 4.5))
        x = np.arange(1, len(self.looks) + 1)
        lk = self.looks
        ax.plot(
            x,
            lk["naive_ci_low"],
            color=PALETTE[3],
            ls="--",
            lw=1.2,
            label="fixed-horizon CI (invalid when peeking)",
        )
        ax.plot(x, lk["naive_ci_high"], color=PALETTE[3], ls="--", lw=1.2)
        finite = np.isfinite(lk["cs_low"]) & np.isfinite(lk["cs_high"])
        ax.fill_between(
            x[finite],
            lk["cs_low"][finite],
            lk["cs_high"][finite],
            color=PALETTE[0],
            alpha=0.25,
            label="confidence sequence (always valid)",
        )
        ax.plot(x, lk["abs_lift"], color=PALETTE[0], lw=2, label="lift")
        ax.axhline(0, color="0.3", lw=1)
        # the first looks' sequences are very wide: scale the axis to the later ones
        skip = min(2, len(lk) - 1)
        later = np.r_[lk["cs_low"].to_numpy()[skip:], lk["cs_high"].to_numpy()[skip:], 0.0]
        later = later[np.isfinite(later)]
        if later.size:
            pad = 0.15 * (later.max() - later.min() or 1.0)
            ax.set_ylim(later.min() - pad, later.max() + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("look")
        ax.set_ylabel(f"lift in {self.metric} (treatment − control)")
        ax.set_title(f"{self.treatment} vs {self.control}: sequential monitoring")
        ax.legend(loc="best")
        return ax


def _cumulative(values: pd.Series, is_treatment: pd.Series, looks: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"y": values.astype(float), "t": is_treatment.to_numpy(), "look": looks})
    frame["y2"] = frame["y"] ** 2
    agg = frame.groupby(["look", "t"], sort=True)[["y", "y2"]].agg(["sum", "count"])
    agg = agg.unstack("t", fill_value=0).cumsum()
    out = pd.DataFrame(index=agg.index)
    for arm, flag in (("control", False), ("treatment", True)):
        n = agg[("y", "count", flag)].astype(float)
        s = agg[("y", "sum", flag)]
        s2 = agg[("y2", "sum", flag)]
        mean = s / n
        var = (s2 - n * mean**2) / (n - 1)
        out[f"n_{arm}"] = n.astype(int)
        out[f"{arm}_mean"] = mean
        out[f"var_{arm}"] = var.clip(lower=0)
    return out


def _bucket(stamps: pd.Series, freq: str) -> pd.Series:
    """Start of each stamp's period: floor for fixed frequencies, calendar periods otherwise."""
    try:
        return stamps.dt.floor(freq)
    except ValueError:  # calendar frequencies ("W", "MS") are not fixed-length
        tz = stamps.dt.tz
        naive = stamps.dt.tz_convert(None) if tz is not None else stamps
        start = naive.dt.to_period(freq).dt.start_time
        return start.dt.tz_localize(tz) if tz is not None else start


def sequential_test(
    data: pd.DataFrame,
    metric: str,
    *,
    time: str = "assigned_at",
    variant: str = "variant",
    control: str = "control",
    treatment: str | None = None,
    freq: str = "D",
    alpha: float = 0.05,
    mixture_sd: float | None = None,
    planned_users: int | None = None,
) -> SequentialResult:
    """Watch a running A/B test at each period with always-valid inference (mSPRT).

    Users enter the analysis at ``time`` (their assignment); each look uses
    everyone assigned up to the end of that period.

    Parameters
    ----------
    data : DataFrame
        User-level table with the variant, the metric and the entry time.
    metric : str
        A numeric (0/1 for conversions) metric column.
    freq : str
        Look frequency (a pandas offset alias, "D" = daily).
    mixture_sd : float, optional
        Spread τ of the effects you expect (metric units). By default τ is
        tuned to the planned horizon (``planned_users`` per arm, else the
        users so far) so the sequence is tightest there.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame({"variant": np.tile(["control", "b"], 500),
    ...     "assigned_at": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(1000) // 100, "D"),
    ...     "y": rng.normal(size=1000)})
    >>> sequential_test(frame, "y").looks.shape[0]
    10
    """
    require_columns(data, [variant, metric, time], what="experiment")
    check_range("alpha", alpha, low=0, high=1)
    arms = [v for v in pd.unique(data[variant]) if v != control]
    if control not in set(data[variant]):
        raise ParameterError(
            f"control == {control!r} is not a variant in the data ({sorted(map(str, set(data[variant])))})."
        )
    if treatment is None:
        if len(arms) != 1:
            raise ParameterError(f"several treatments {arms}: pass treatment=... to pick one.")
        treatment = arms[0]
    part = data[data[variant].isin([control, treatment])]
    stamps = pd.to_datetime(part[time])
    looks_at = _bucket(stamps, freq) if freq else stamps
    table = _cumulative(part[metric], part[variant] == treatment, looks_at)
    diff = (table["treatment_mean"] - table["control_mean"]).to_numpy()
    var = (
        table["var_control"] / table["n_control"] + table["var_treatment"] / table["n_treatment"]
    ).to_numpy()
    if mixture_sd is not None:
        check_range("mixture_sd", mixture_sd, low=0)
        tau2 = float(mixture_sd) ** 2
    else:
        last = table.iloc[-1]
        scale = 1.0
        if planned_users:
            scale = (last.n_control + last.n_treatment) / (2 * planned_users)
        tau2 = float(default_mixture_variance(var[-1] * scale, alpha))
    p, lo, hi = msprt(diff, var, tau2=tau2, alpha=alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(var)
        naive_p = 2 * stats.norm.sf(np.abs(diff) / se)
    z = stats.norm.ppf(1 - alpha / 2)
    looks = pd.DataFrame(
        {
            "time": table.index,
            "n_control": table["n_control"].to_numpy(),
            "n_treatment": table["n_treatment"].to_numpy(),
            "control_mean": table["control_mean"].to_numpy(),
            "treatment_mean": table["treatment_mean"].to_numpy(),
            "abs_lift": diff,
            "cs_low": lo,
            "cs_high": hi,
            "always_valid_p": p,
            "naive_p": naive_p,
            "naive_ci_low": diff - z * se,
            "naive_ci_high": diff + z * se,
        }
    )
    values = pd.to_numeric(part[metric], errors="coerce").dropna()
    binary = bool(len(values)) and bool(values.isin([0, 1]).all())
    return SequentialResult(looks, metric, str(treatment), str(control), alpha, tau2, binary)


@dataclass(repr=False)
class AASimulation(Result):
    """False-positive rates of naive peeking and of the mSPRT in A/A tests."""

    replications: int
    looks: int
    alpha: float
    naive_false_positive_rate: float
    sequential_false_positive_rate: float
    fixed_horizon_false_positive_rate: float
    by_look: pd.DataFrame
    seed: int

    title = "A/A simulation: peeking"

    @property
    def monte_carlo_se(self) -> float:
        """Monte-Carlo standard error of a rate near α."""
        return math.sqrt(self.alpha * (1 - self.alpha) / self.replications)

    def to_frame(self) -> pd.DataFrame:
        """Cumulative false-positive rate by look for both methods."""
        return self.by_look.copy()

    def summary(self) -> str:
        """Return the headline rates as a sentence."""
        return (
            f"{self.replications:,} A/A experiments (seed {self.seed}), {self.looks} looks each, "
            f"stopping at the first p < {self.alpha:g}: the naive fixed-horizon test declares a "
            f"difference in {fmt_pct(self.naive_false_positive_rate)} of them; the always-valid "
            f"mSPRT in {fmt_pct(self.sequential_false_positive_rate)} (Monte-Carlo SE "
            f"{fmt_pct(self.monte_carlo_se)}). A single test at the planned end: "
            f"{fmt_pct(self.fixed_horizon_false_positive_rate)}."
        )

    def plot(self, ax=None):
        """Cumulative false-positive rate by look."""
        from matplotlib.ticker import MaxNLocator

        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(7, 4))
        x = self.by_look["look"]
        ax.plot(x, self.by_look["naive"], color=PALETTE[3], lw=2, label="naive test, stop at p < α")
        ax.plot(x, self.by_look["sequential"], color=PALETTE[0], lw=2, label="mSPRT (always valid)")
        ax.axhline(self.alpha, color="0.4", ls="--", lw=1, label=f"α = {self.alpha:g}")
        percent_axis(ax, "y")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("look")
        ax.set_ylabel("false positives so far")
        ax.set_title("A/A tests: the cost of peeking")
        ax.legend(loc="upper left")
        return ax


def simulate_aa(
    replications: int = 2000,
    looks: int = 20,
    users_per_look: int = 500,
    rate: float = 0.1,
    *,
    alpha: float = 0.05,
    seed: int = 2026,
) -> AASimulation:
    """Simulate A/A conversion tests watched at every look (vectorised, seeded).

    Each replication adds ``users_per_look`` users per arm at each look, both
    arms converting at ``rate``. Reports how often "stop at the first
    p < α" declares a difference for the naive z-test and for the mSPRT.

    Examples
    --------
    >>> sim = simulate_aa(200, looks=5, seed=1)
    >>> 0 <= sim.sequential_false_positive_rate <= sim.naive_false_positive_rate
    True
    """
    check_range("rate", rate, low=0, high=1)
    rng = np.random.default_rng(seed)
    counts = rng.binomial(users_per_look, rate, size=(2, replications, looks)).cumsum(axis=-1)
    n = users_per_look * np.arange(1, looks + 1, dtype=float)
    p = counts / n
    var = (p * (1 - p) * n / (n - 1) / n).sum(axis=0)
    diff = p[1] - p[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = 2 * stats.norm.sf(np.abs(diff) / np.sqrt(var))
    naive = np.where(np.isfinite(naive), naive, 1.0)
    tau2 = default_mixture_variance(var[:, -1:], alpha)
    seq_p, _, _ = msprt(diff, var, tau2=tau2, alpha=alpha)
    naive_hit = np.logical_or.accumulate(naive < alpha, axis=-1)
    seq_hit = seq_p < alpha
    by_look = pd.DataFrame(
        {
            "look": np.arange(1, looks + 1),
            "naive": naive_hit.mean(axis=0),
            "sequential": seq_hit.mean(axis=0),
        }
    )
    return AASimulation(
        replications,
        looks,
        alpha,
        float(naive_hit[:, -1].mean()),
        float(seq_hit[:, -1].mean()),
        float((naive[:, -1] < alpha).mean()),
        by_look,
        seed,
    )
