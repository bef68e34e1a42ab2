"""Customer lifetime value by acquisition channel, with CLV:CAC when spend is known.

:func:`clv_by_channel` fits (or takes) one BG/NBD and one Gamma-Gamma model
from :mod:`journeylab.clv.models` on all customers and compares the channels through
their customers' own histories: value to date, discounted predicted value over
a horizon with delta-method intervals, P(alive), and with a spend table the
acquisition cost per new customer. Both names are importable from
:mod:`journeylab.clv`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtri

from journeylab.clv.models import (
    BetaGeo,
    Freq,
    GammaGamma,
    _arrays,
    _discounted_purchases,
    _unique_rows,
    rfm_summary,
)
from journeylab.core.errors import ParameterError, check_range, require_columns
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_pct
from journeylab.core.timeparse import naive_utc, to_utc_timestamp
from journeylab.customers.purchases import as_frame, purchase_rows

__all__ = ["clv_by_channel", "ChannelCLVResult"]


def _expected_spend(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, v = params
    return p * (v + x * np.where(x > 0, m, 0.0)) / (p * x + q - 1)


def _channel_of_customers(
    transactions, users_or_channel_col, *, customer_id_col, datetime_col, value_col
):
    if isinstance(users_or_channel_col, pd.DataFrame):
        users = users_or_channel_col
        col = next((c for c in ("acquisition_channel", "channel") if c in users.columns), None)
        require_columns(users, [customer_id_col, col or "acquisition_channel"], what="users")
        return users.drop_duplicates(customer_id_col).set_index(customer_id_col)[col], col
    if isinstance(users_or_channel_col, pd.Series):
        return users_or_channel_col, users_or_channel_col.name or "channel"
    if not isinstance(users_or_channel_col, str):
        raise ParameterError(
            "users_or_channel_col must be a transactions column name, a users table with "
            "'acquisition_channel', or a Series user_id -> channel."
        )
    rows, _ = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
        extra=(users_or_channel_col,),
    )
    first = rows.sort_values(["customer", "time"], kind="stable").drop_duplicates("customer")
    return first.set_index("customer")[users_or_channel_col], users_or_channel_col


@dataclass(repr=False)
class ChannelCLVResult(Result):
    """Historical and predicted customer value per acquisition channel, with CLV:CAC when spend is known.

    Attributes
    ----------
    table : DataFrame
        One row per channel (and ``all``): ``customers``, ``repeat_rate``,
        ``historical_value`` (net revenue to date per customer),
        ``predicted_clv`` (discounted expected value over the horizon per
        customer) with ``clv_se``, ``clv_ci_low``/``clv_ci_high`` (parameter
        uncertainty by the delta method plus the standard error of the
        channel mean), ``p_alive``; with spend also ``spend``,
        ``new_customers``, ``cac``, ``value_per_new_customer`` and ``clv_to_cac``.
    customers : DataFrame
        Per customer: channel, historical value, predicted CLV, P(alive).
    """

    table: pd.DataFrame
    customers: pd.DataFrame
    horizon: int
    discount_rate: float
    spend_window: tuple[pd.Timestamp, pd.Timestamp] | None
    caveats: list[str]
    left_out: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95
    #: why the predicted values are not shown (a model fit not to be trusted), or None
    withheld: str | None = None
    #: ISO 4217 code (or sign) the amounts are written in
    currency: str = "USD"
    title: str = "Customer lifetime value by acquisition channel"

    def _money(self, value: float | None) -> str:
        return fmt_money(value, self.currency)

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        return self.table.reset_index()

    def display_frame(self) -> pd.DataFrame:
        """Return the table formatted for readers."""
        t = self.table
        shown = pd.DataFrame(index=t.index)
        shown["customers"] = t["customers"].map(lambda v: f"{v:,}")
        shown["repeat rate"] = t["repeat_rate"].map(fmt_pct)
        shown["value to date"] = t["historical_value"].map(self._money)
        shown[f"CLV next {self.horizon} mo"] = [
            "not shown" if self.withheld else f"{self._money(v)} {fmt_ci(lo, hi, self._money)}"
            for v, lo, hi in zip(t["predicted_clv"], t["clv_ci_low"], t["clv_ci_high"], strict=True)
        ]
        if "cac" in t.columns:
            shown["new customers"] = t["new_customers"].map(lambda v: f"{v:,}")
            shown["CAC"] = t["cac"].map(self._money)
            shown["CLV:CAC"] = t["clv_to_cac"].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
        return shown

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        t = self.table.drop(index="all", errors="ignore")
        allrow = self.table.loc["all"]
        if self.withheld:
            lines = [
                f"{int(allrow['customers']):,} customers; value to date {self._money(allrow['historical_value'])} per "
                f"customer. Predicted value over the next {self.horizon} months, per channel and in CLV:CAC: "
                f"{self.withheld}",
                "Caveats:",
                *[f"- {c}" for c in self.caveats],
            ]
            return "\n".join(lines)
        lines = [
            f"{int(allrow['customers']):,} customers; value to date {self._money(allrow['historical_value'])} per "
            f"customer, expected discounted value over the next {self.horizon} months "
            f"{self._money(allrow['predicted_clv'])} "
            f"{fmt_ci(allrow['clv_ci_low'], allrow['clv_ci_high'], self._money)} "
            f"(monthly discount rate {fmt_pct(self.discount_rate)}).",
            "Predicted CLV per customer (channels with 30+ customers): "
            + ", ".join(
                f"{c} {self._money(v)}"
                for c, v in t.loc[t["customers"] >= 30, "predicted_clv"]
                .sort_values(ascending=False)
                .head(10)
                .items()
            )
            + ".",
        ]
        if "clv_to_cac" in t.columns:
            start, end = self.spend_window
            ratio = t["clv_to_cac"].dropna().sort_values(ascending=False)
            lines.append(
                f"CLV:CAC for customers acquired {start:%Y-%m-%d} – {end:%Y-%m-%d} (value to date + next "
                f"{self.horizon} months, over spend per new customer): "
                + ", ".join(f"{c} {v:.2f}" for c, v in ratio.items())
                + "."
            )
        lines.append("Caveats:")
        lines.extend(f"- {c}" for c in self.caveats)
        return "\n".join(lines)

    def plot(self, ax=None):
        """Bars of value to date + predicted CLV per customer by channel; CAC marked when known."""
        from journeylab.core.viz import PALETTE, new_axes

        t = self.table.drop(index="all", errors="ignore")
        t = t.loc[(t["historical_value"] + t["predicted_clv"]).sort_values().index]
        ax = new_axes(ax, figsize=(8, max(3.0, 0.5 * len(t) + 1.5)))
        y = np.arange(len(t))
        hist = t["historical_value"].to_numpy()
        pred = t["predicted_clv"].to_numpy()
        ax.barh(y, hist, color=PALETTE[7], label="value to date")
        err = np.vstack([pred - t["clv_ci_low"].to_numpy(), t["clv_ci_high"].to_numpy() - pred])
        ax.barh(
            y,
            pred,
            left=hist,
            color=PALETTE[0],
            xerr=np.nan_to_num(err),
            ecolor="0.3",
            capsize=3,
            label=f"expected next {self.horizon} months",
        )
        if "cac" in t.columns:
            ax.scatter(t["cac"], y, marker="D", color="black", zorder=3, label="CAC")
        ax.set_yticks(y, [f"{c}  (n={n:,})" for c, n in zip(t.index, t["customers"], strict=True)])
        ax.set_xlabel("value per customer")
        ax.xaxis.set_major_formatter(lambda v, _: self._money(v) if v else "0")
        ax.set_title("Customer value by acquisition channel")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return ax


def clv_by_channel(
    transactions: pd.DataFrame,
    users_or_channel_col: str | pd.DataFrame | pd.Series = "channel",
    *,
    model: BetaGeo | None = None,
    spend_model: GammaGamma | None = None,
    spend: pd.DataFrame | None = None,
    horizon: int = 12,
    discount_rate: float = 0.01,
    freq: Freq = "D",
    observation_period_end: str | pd.Timestamp | None = None,
    alpha: float = 0.05,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    value_col: str = "value",
    currency: str = "USD",
) -> ChannelCLVResult:
    """Historical and predicted CLV by acquisition channel, and CLV:CAC when spend is given.

    One BG/NBD and one Gamma-Gamma model are fitted on all customers (or the
    fitted ``model``/``spend_model`` are used); channels differ through their
    customers' own histories. Intervals on predicted CLV combine parameter
    uncertainty (delta method on the log-parameters) with the spread of
    customers within the channel; they do not cover model error.

    Parameters
    ----------
    transactions : DataFrame
        ``user_id``, ``timestamp``, ``value``.
    users_or_channel_col : str, DataFrame or Series
        A transactions column holding the acquisition channel (its value on the
        first purchase is used), a users table with ``user_id`` and
        ``acquisition_channel``, or a Series ``user_id -> channel``.
    model, spend_model : BetaGeo, GammaGamma, optional
        Fitted models to use; fitted here when None.
    spend : DataFrame, optional
        ``channel``, ``date``, ``cost``. CAC = spend of the channel over the
        spend table's date range / customers whose first purchase falls in it.
    horizon : int
        Months of future value in the predicted CLV.
    discount_rate : float
        Monthly discount rate.
    currency : str
        ISO 4217 code the values are written in (the project file's ``currency``).

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample
    >>> s = make_sample(seed=1, n_users=2000)
    >>> res = clv_by_channel(s.transactions, s.users, spend=s.spend, currency="EUR")
    >>> print(res.summary().splitlines()[0])  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
    422 customers; value to date €572 per customer, expected discounted value over the next 12
    months €... [€..., €...] (monthly discount rate 1.0%).
    """
    check_range("alpha", alpha, low=0, high=1)
    summary = rfm_summary(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=value_col,
        observation_period_end=observation_period_end,
        freq=freq,
    )
    channel_of, channel_name = _channel_of_customers(
        transactions,
        users_or_channel_col,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
    )
    channel = summary.index.to_series().map(channel_of)
    channel = channel.astype(object).where(channel.notna(), "(unknown)")
    model = model if model is not None else BetaGeo().fit(summary)
    spend_model = spend_model if spend_model is not None else GammaGamma().fit(summary)
    if getattr(model, "freq_", freq) != freq:
        raise ParameterError(
            f"model was fitted with freq={model.freq_!r} but freq == {freq!r}; pass the same unit."
        )
    # net revenue to date (refunds subtracted) of customers with purchases
    rows, _ = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=value_col,
        refunds="keep",
    )
    end_time = (
        naive_utc(as_frame(transactions)[0][datetime_col], datetime_col).max()
        if observation_period_end is None
        else to_utc_timestamp(observation_period_end, "observation_period_end").tz_localize(None)
    )
    rows = rows[rows["time"] <= end_time]
    historical = rows.groupby("customer")["value"].sum().reindex(summary.index).fillna(0.0)
    first_purchase = (
        rows[rows["value"].fillna(1) > 0].groupby("customer")["time"].min().reindex(summary.index)
    )

    x, t_x, T, _ = _arrays(summary)
    m = summary["monetary_value"].to_numpy(dtype=float)
    (ux, ut, uT), _, inverse = _unique_rows(x, t_x, T)
    bg_params, gg_params = model._natural_params(), spend_model._natural_params()
    spend_model.mean_spend()  # raises a clear error when q <= 1

    def purchases_for(bg) -> np.ndarray:
        return _discounted_purchases(
            bg, ux, ut, uT, months=int(horizon), freq=freq, discount_rate=discount_rate
        )[inverse]

    base_purchases, base_spend = purchases_for(bg_params), _expected_spend(gg_params, x, m)

    customers = pd.DataFrame(
        {
            "channel": channel.to_numpy(),
            "first_purchase": first_purchase.to_numpy(),
            "historical_value": historical.to_numpy(),
            "predicted_clv": base_purchases * base_spend,
            "p_alive": np.asarray(model.conditional_probability_alive(x, t_x, T)),
            "repeat": x > 0,
        },
        index=summary.index,
    )
    groups = ["all", *sorted(customers["channel"].unique(), key=str)]
    masks = {
        g: (np.ones(len(customers), bool) if g == "all" else customers["channel"].to_numpy() == g)
        for g in groups
    }

    def channel_means(values: np.ndarray) -> np.ndarray:
        return np.array([values[mask].mean() for mask in masks.values()])

    # delta method: gradient of each channel's mean CLV in the 7 log-parameters (central
    # differences; BG/NBD parameters move the purchases only, Gamma-Gamma ones the spend only)
    log_theta = np.concatenate([np.log(bg_params), np.log(gg_params)])
    cov = np.zeros((7, 7))
    cov[:4, :4], cov[4:, 4:] = model.fit_.log_cov, spend_model.fit_.log_cov
    base = channel_means(customers["predicted_clv"].to_numpy())
    grads = np.empty((len(groups), 7))
    step = 1e-4
    for j in range(7):
        shifted = []
        for sign in (1, -1):
            theta = log_theta.copy()
            theta[j] += sign * step
            if j < 4:
                shifted.append(channel_means(purchases_for(np.exp(theta[:4])) * base_spend))
            else:
                shifted.append(
                    channel_means(base_purchases * _expected_spend(np.exp(theta[4:]), x, m))
                )
        grads[:, j] = (shifted[0] - shifted[1]) / (2 * step)
    z = float(ndtri(1 - alpha / 2))
    se_params = np.sqrt(np.einsum("gi,ij,gj->g", grads, cov, grads))
    # customer-to-customer variation: the standard error of each channel's mean
    clv_values = customers["predicted_clv"].to_numpy()
    se_sampling = np.array(
        [
            clv_values[mask].std(ddof=1) / np.sqrt(mask.sum()) if mask.sum() > 1 else np.nan
            for mask in masks.values()
        ]
    )
    se = np.sqrt(se_params**2 + se_sampling**2)
    table = pd.DataFrame(index=pd.Index(groups, name=channel_name))
    table["customers"] = [int(mask.sum()) for mask in masks.values()]
    table["repeat_rate"] = channel_means(customers["repeat"].to_numpy(dtype=float))
    table["historical_value"] = channel_means(customers["historical_value"].to_numpy())
    table["predicted_clv"] = base
    table["clv_se"] = se
    # normal approximation; CLV cannot be negative, so the lower end stops at 0
    table["clv_ci_low"] = np.maximum(base - z * se, 0.0)
    table["clv_ci_high"] = base + z * se
    table["p_alive"] = channel_means(customers["p_alive"].to_numpy())

    caveats = [
        "Values are revenue, not margin: multiply by your margin before comparing with acquisition cost.",
        "One BG/NBD and one Gamma-Gamma fit are shared by all channels; channels differ only through "
        "their customers' histories, and recently acquired cohorts carry little history.",
        f"Intervals ({1 - alpha:.0%}) combine the models' parameter uncertainty (delta method) with "
        "customer-to-customer variation within the channel; they do not cover model misfit: check "
        "the models on a holdout period (journeylab.clv.holdout.calibration_and_holdout).",
    ]
    withheld = model.withheld("total_value") or spend_model.withheld("total_value")
    for fitted in (model, spend_model):
        if fitted.status != "ok":
            caveats.insert(0, f"{fitted._short} fit (status {fitted.status}): {fitted.warnings[0]}")
    small = [str(g) for g, mask in masks.items() if g != "all" and mask.sum() < 30]
    if small:
        shown = ", ".join(small[:10]) + (f" and {len(small) - 10} more" if len(small) > 10 else "")
        caveats.append(f"Fewer than 30 customers, treat as anecdotal: {shown}.")
    window = None
    if spend is not None:
        require_columns(spend, ["channel", "date", "cost"], what="spend")
        dates = naive_utc(spend["date"], "date")
        window = (dates.min(), dates.max())
        window_end = dates.max().normalize() + pd.Timedelta(days=1)
        cost = pd.to_numeric(spend["cost"], errors="coerce")
        spend_by = cost.groupby(spend["channel"].astype(object).to_numpy()).sum()
        acquired = customers[
            (customers["first_purchase"] >= window[0]) & (customers["first_purchase"] < window_end)
        ]
        new = acquired.groupby("channel").size()
        value_new = (
            (acquired["historical_value"] + acquired["predicted_clv"])
            .groupby(acquired["channel"])
            .mean()
        )
        table["spend"] = spend_by.reindex(table.index).fillna(0.0)
        table.loc["all", "spend"] = float(spend_by.sum())
        table["new_customers"] = new.reindex(table.index).fillna(0).astype(int)
        table.loc["all", "new_customers"] = len(acquired)
        table["value_per_new_customer"] = value_new.reindex(table.index)
        table.loc["all", "value_per_new_customer"] = (
            acquired["historical_value"] + acquired["predicted_clv"]
        ).mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            cac = np.where(
                table["new_customers"] > 0,
                table["spend"] / table["new_customers"].clip(lower=1),
                np.nan,
            )
        table["cac"] = np.where(table["spend"] > 0, cac, np.nan)
        table["clv_to_cac"] = table["value_per_new_customer"] / table["cac"]
        unspent = [c for c in table.index if c != "all" and table.loc[c, "spend"] == 0]
        no_customers = [
            c for c in spend_by.index if c not in table.index or table.loc[c, "new_customers"] == 0
        ]
        caveats.append(
            "CAC credits every new customer to one acquisition channel: customers a channel would have won "
            "anyway (organic demand, other touches) make it look cheaper; use the attribution and experiment "
            "modules for incremental CAC."
        )
        if unspent:
            caveats.append(
                f"No spend recorded for {', '.join(map(str, unspent))}: no CAC (organic or untracked)."
            )
        if no_customers:
            caveats.append(
                f"Spend but no new customers in the window for {', '.join(map(str, no_customers))}."
            )
    return ChannelCLVResult(
        table=table,
        customers=customers,
        horizon=int(horizon),
        discount_rate=discount_rate,
        spend_window=window,
        caveats=caveats,
        left_out={k: v for k, v in summary.attrs.items() if k != "freq"},
        confidence=1 - alpha,
        withheld=withheld,
        currency=currency,
    )
