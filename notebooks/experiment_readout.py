# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiment readout
#
# Visitors were split at random between the current experience (the control) and a
# variant (the assignments table; the project file may describe the experiment). Did the
# variant lead to more conversions — the project's conversion events — and to more
# revenue per person? Before any result, this report checks that the
# experiment can be trusted: that the split of people matches the design, that the two
# groups looked alike before the test, and that the effect is not an artefact of timing.
# Then it gives the result, the same result sharpened with pre-test data (CUPED), how it
# looked while the test was running, the Bayesian reading, and how large a test would
# need to be to detect a realistic effect.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: users assigned up to the end of this month are analysed
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample (0: as in the project file)
n_users: int = 0  # users of a generated sample (0: as in the project file)
experiment: str = ""  # the experiment read out; empty: the assignments' experiment column, else the project's only one
control: str = ""  # control variant; empty: 'control' if present, else the first variant
treatment: str = ""  # variant tested against the control; empty: the first other one
treatment_share: float = 0.5  # designed share of users sent to the treatment
window_days: int = 14  # conversions and revenue counted within this many days of assignment
alpha: float = 0.05  # significance level of tests and intervals
mde_relative: float = 0.10  # smallest relative lift in the conversion rate worth detecting
target_power: float = 0.8  # power the sample-size note plans for

# %%
# Validate and derive: nothing below reads a raw parameter.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.core.results import fmt_p, fmt_pct, fmt_pp, interval_precision
from journeylab.core.safe_text import md
from journeylab.core.viz import set_theme
from journeylab.experiments import analyze, power_calculator, sequential_test, user_metrics
from journeylab.reports import runner as reports
from journeylab.reports.prose import Money
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if control and control == treatment:
    raise jl.ParameterError(f"treatment == {treatment!r}, must differ from control.")
if not 0 < treatment_share < 1:
    raise jl.ParameterError(f"treatment_share == {treatment_share}, must be > 0 and < 1.")
if window_days < 1:
    raise jl.ParameterError(f"window_days == {window_days}, must be >= 1.")
if not 0 < alpha < 0.5:
    raise jl.ParameterError(f"alpha == {alpha}, must be > 0 and < 0.5.")
if not 0 < mde_relative < 1:
    raise jl.ParameterError(f"mde_relative == {mde_relative}, must be > 0 and < 1.")
if not 0.5 <= target_power < 1:
    raise jl.ParameterError(f"target_power == {target_power}, must be >= 0.5 and < 1.")
period = pd.Period(month, freq="M")
month_end = (period + 1).start_time.tz_localize("UTC")
window = pd.Timedelta(days=window_days)
METRICS = [{"name": "converted", "kind": "binary"}, {"name": "revenue", "kind": "continuous"}]
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
project = ws.project
money = Money(project.currency_sign)
if ws.assignments is None:
    raise jl.DataError(
        "No assignments table: an experiment readout needs one.",
        source=ws.source,
        hint="add assignments.parquet (or .csv) with user_id, variant and assigned_at to the data folder.",
    )
assignments = ws.assignments.frame
if "experiment" in assignments.columns:
    names = sorted(assignments["experiment"].dropna().astype(str).unique())
    experiment = experiment or (names[0] if len(names) == 1 else "")
    if not experiment or experiment not in names:
        raise jl.ParameterError(
            f"experiment == {experiment!r}, must be one of the experiments in the data: {names}."
        )
    assignments = assignments[assignments["experiment"].astype(str) == experiment]
elif not experiment and len(project.experiments) == 1:
    experiment = next(iter(project.experiments))
described = project.experiments.get(experiment, {})
variants = sorted(assignments["variant"].dropna().astype(str).unique())
control = control or ("control" if "control" in variants else variants[0])
treatment = treatment or next((v for v in variants if v != control), "")
design_split = {control: 1 - treatment_share, treatment: treatment_share}
for label, name in ((control, "control"), (treatment, "treatment")):
    if label not in variants:
        raise jl.ParameterError(
            f"{name} == {label!r}, must be one of the variants in the data: {variants}."
        )
# Only users whose whole measurement window ended by the end of the month.
complete = assignments[
    assignments["variant"].isin([control, treatment])
    & (assignments["assigned_at"] + window <= month_end)
]
if complete.empty:
    raise jl.DataError(
        f"No users assigned at least {window_days} days before the end of {month}.",
        source=ws.source,
        column="assigned_at",
        hint="choose a later month or a shorter window_days.",
    )
events = ws.events.frame
if project.value_per_conversion is not None:
    # conversions without a value are worth the project's value per conversion
    events = events.copy()
    if "value" not in events.columns:
        events["value"] = float("nan")
    events.loc[events["event"].isin(project.conversion) & events["value"].isna(), "value"] = (
        project.value_per_conversion
    )
conversion = list(project.conversion)
users = user_metrics(
    complete,
    events,
    {
        "converted": {"event": conversion, "agg": "any"},
        "revenue": {"event": conversion, "agg": "sum"},
    },
    window=f"{window_days}D",
)
# pre-period covariates of the assignments table: activity and revenue before assignment
pre_activity = next((c for c in users.columns if c.startswith("pre_") and c != "pre_revenue"), None)
COVARIATES = {"converted": pre_activity, "revenue": "pre_revenue"}
users["week"] = users["assigned_at"].dt.tz_convert(None).dt.to_period("W").dt.start_time
has_covariates = (
    all(c in users.columns for c in COVARIATES.values() if c) and pre_activity is not None
)
started, ended = users["assigned_at"].min(), users["assigned_at"].max()

# The readout (no covariates) and the same readout sharpened with pre-period data (CUPED).
readout = analyze(
    users,
    "variant",
    control,
    METRICS,
    alpha=alpha,
    design_split=design_split,
    period="week",
    correction="holm",
)
cuped = (
    analyze(
        users,
        "variant",
        control,
        METRICS,
        alpha=alpha,
        design_split=design_split,
        covariates=COVARIATES,
        period="week",
        correction="holm",
    )
    if has_covariates
    else None
)
arm_users = users["variant"].value_counts().sort_index()
display(
    Markdown(
        (
            f"**{md(project.label(experiment))}**"
            + (f": {md(described['description'])} " if described.get("description") else ". ")
            if experiment
            else ""
        )
        + f"**{len(users):,} users** assigned between {started:%d %B %Y} and {ended:%d %B %Y} "
        f"({', '.join(f'{md(project.label(v))}: {n:,}' for v, n in arm_users.items())}); "
        f"conversions ({' or '.join(md(project.label(c)) for c in conversion)}) and revenue are counted over the "
        f"{window_days} days after each user's assignment. "
        f"Users assigned later than {window_days} days before the end of {period.strftime('%B %Y')} are left out "
        "until their window is complete."
    )
)

# %% [markdown]
# ## Trust checks
#
# - **Unique users**: each user should appear once, in one variant; a user logged twice,
#   or in both variants, is counted here and never silently counted as two people.
# - **Sample ratio mismatch (SRM)**: the users per variant should match the designed
#   split; a mismatch usually means lost or duplicated assignment records, and then no
#   result below can be trusted.
# - **Pre-period balance**: the groups should look alike *before* the test (sessions and
#   revenue before assignment).
# - **Simpson's paradox guard**: the lift within each week should agree with the pooled
#   lift; if the split changed over time, pooled numbers can mislead, and the readout
#   then leads with the lift measured within weeks.
# - **Novelty**: a lift that fades (or grows) week by week is a novelty (or learning)
#   effect, and the average will not last.

# %%
checks = (cuped or readout).checks_frame()
symbol = {"ok": "✓ passed", "flagged": "✗ flagged", "skipped": "– skipped"}
display(
    pd.DataFrame(
        {
            "check": checks["check"],
            "status": [symbol.get(str(s), str(s)) for s in checks["status"]],
            "what it found": checks["message"],
        }
    ).style.hide(axis="index")
)
srm = checks[checks["check"].str.contains("sample ratio", case=False)]
srm_ok = bool(len(srm)) and str(srm["status"].iloc[0]) == "ok"
checks_ok = not bool((checks["status"].astype(str) == "flagged").any())
if not srm_ok:
    display(
        Markdown(
            "**⚠ The split of users does not match the design.** Until the lost or duplicated assignment "
            "records are found, the results below are shown for diagnosis only."
        )
    )
elif not checks_ok:
    display(
        Markdown("**⚠ At least one trust check is flagged**: read the results below with care.")
    )

# %% [markdown]
# ## Readout
#
# Two metrics: **converted** (did the user convert, a rate) and **revenue** per user
# (conversion value, zero for those who did not convert). The p-values are adjusted for
# testing two metrics (Holm), and intervals are 95 %.

# %%
readout

# %% [markdown]
# ### Forest plot
#
# Each metric's lift relative to control, with its 95 % interval; an interval that crosses
# zero means the test cannot tell the variants apart on that metric.

# %%
ax = readout.plot()
plt.show()

# %% [markdown]
# ## CUPED: the same readout sharpened with pre-test data
#
# People who were active before the test tend to be active during it. CUPED removes that
# predictable part (activity before assignment for conversions, revenue before assignment
# for revenue) so the interval narrows without changing what is estimated. The covariates were
# measured before each user's assignment.

# %%
if cuped is not None:
    raw = readout.to_frame().set_index("metric")
    adj = cuped.to_frame(detailed=True).set_index("metric")

    def _fmt(metric: str, value: float) -> str:
        return f"{value * 100:+.2f} pp" if metric == "converted" else f"{value:+,.2f}"

    display(
        pd.DataFrame(
            {
                "covariate": [COVARIATES[m] for m in raw.index],
                "lift without CUPED": [
                    f"{_fmt(m, raw.at[m, 'abs_lift'])} "
                    f"[{_fmt(m, raw.at[m, 'abs_ci_low'])}, {_fmt(m, raw.at[m, 'abs_ci_high'])}]"
                    for m in raw.index
                ],
                "lift with CUPED": [
                    f"{_fmt(m, adj.at[m, 'abs_lift'])} "
                    f"[{_fmt(m, adj.at[m, 'abs_ci_low'])}, {_fmt(m, adj.at[m, 'abs_ci_high'])}]"
                    for m in raw.index
                ],
                "variance removed": [fmt_pct(adj.at[m, "variance_reduction"]) for m in raw.index],
                "p (Holm) without → with": [
                    f"{fmt_p(raw.at[m, 'p_value_adjusted'])} → {fmt_p(adj.at[m, 'p_value_adjusted'])}"
                    for m in raw.index
                ],
            },
            index=pd.Index(raw.index, name="metric"),
        )
    )
    best = adj["variance_reduction"].max()
    display(
        Markdown(
            f"The pre-period covariates remove at most {fmt_pct(best)} of the variance here"
            + (
                ", so CUPED barely changes the result: behaviour before the test predicts little of the "
                "behaviour during it."
                if best < 0.05
                else ", which narrows the intervals accordingly."
            )
        )
    )
else:
    display(
        Markdown(
            "The assignments table has no pre-period covariates (pre\\_revenue and one more pre\\_ column): no CUPED."
        )
    )

# %% [markdown]
# ## Sequential monitoring
#
# How the conversion-rate lift looked week by week while the test ran, with an
# *always-valid* 95 % confidence sequence (mSPRT): unlike an ordinary interval it stays
# valid however often someone looks, so stopping early when it excludes zero is safe.

# %%
monitor = sequential_test(
    users,
    "converted",
    variant="variant",
    control=control,
    treatment=treatment,
    freq="W",
    alpha=alpha,
)
display(Markdown("\n\n".join(md(line) for line in monitor.summary().splitlines())))
looks = monitor.to_frame()
# Every fourth look once both arms have 100 users (earlier intervals are too wide to read), and the last.
readable = np.flatnonzero((looks[["n_control", "n_treatment"]].min(axis=1) >= 100).to_numpy())
first = int(readable[0]) if len(readable) else len(looks) - 1
shown = looks.iloc[sorted(set(range(first, len(looks), 4)) | {len(looks) - 1})]
display(
    pd.DataFrame(
        {
            "week starting": pd.to_datetime(shown["time"]).dt.strftime("%d %b %Y"),
            "users (control / treatment)": [
                f"{c:,} / {t:,}"
                for c, t in zip(shown["n_control"], shown["n_treatment"], strict=True)
            ],
            "lift": [f"{v * 100:+.1f} pp" for v in shown["abs_lift"]],
            "always-valid 95% interval": [
                f"[{lo * 100:+.1f} pp, {hi * 100:+.1f} pp]"
                for lo, hi in zip(shown["cs_low"], shown["cs_high"], strict=True)
            ],
            "always-valid p": shown["always_valid_p"].map(fmt_p),
            "naive p (invalid when peeking)": shown["naive_p"].map(fmt_p),
        }
    ).style.hide(axis="index")
)

# %%
ax = monitor.plot()
plt.show()

# %% [markdown]
# ### By segment (exploratory)
#
# The conversion-rate lift per level of the segment the experiment addresses (in the
# project file), else of the first project segment the assignments carry. These are
# extra comparisons on smaller groups: read them as hints, not as results.

# %%
addressed = str(described.get("addresses", "")).rsplit(":", 1)[-1].split("=")[0]
segment = next((c for c in [addressed, *project.segments] if c and c in users.columns), None)
if segment is not None:
    rows = []
    for level, group in users.groupby(segment, sort=True):
        if group["variant"].value_counts().min() < 30:
            continue
        by_level = analyze(
            group, "variant", control, [METRICS[0]], alpha=alpha, correction=None, bayesian=False
        )
        f = by_level.to_frame().iloc[0]
        rows.append(
            {
                project.label(segment): project.label(level),
                "users": f"{len(group):,}",
                "control": fmt_pct(f["control_mean"]),
                project.label(treatment): fmt_pct(f["treatment_mean"]),
                "lift": f"{f['abs_lift'] * 100:+.1f} pp",
                "95% CI": f"[{f['abs_ci_low'] * 100:+.1f} pp, {f['abs_ci_high'] * 100:+.1f} pp]",
                "p (unadjusted)": fmt_p(f["p_value"]),
            }
        )
    display(
        pd.DataFrame(rows).style.hide(axis="index")
        if rows
        else Markdown("Too few users per segment level.")
    )
else:
    display(Markdown("The assignments carry none of the project's segments: no breakdown."))

# %% [markdown]
# ## Bayesian readout
#
# The probability that the variant is better than control, the expected loss if we
# switch to it and it is in fact worse (in the metric's units), and a 95 % credible
# interval for the lift.

# %%
bayes = readout.to_frame(detailed=True).set_index("metric")
if "prob_beats_control" in bayes:
    display(
        pd.DataFrame(
            {
                f"P({project.label(treatment)} beats {project.label(control)})": bayes[
                    "prob_beats_control"
                ].map(fmt_pct),
                "expected loss if switched": [
                    f"{v * 100:.2f} pp" if m == "converted" else f"{v:,.2f}"
                    for m, v in bayes["expected_loss"].items()
                ],
                "95% credible interval of the lift": [
                    f"[{lo * 100:+.2f} pp, {hi * 100:+.2f} pp]"
                    if m == "converted"
                    else f"[{lo:+,.2f}, {hi:+,.2f}]"
                    for m, lo, hi in zip(
                        bayes.index, bayes["credible_low"], bayes["credible_high"], strict=True
                    )
                ],
                "prior": bayes["bayes_prior"],
            }
        )
    )

# %% [markdown]
# ## Power and sample size
#
# Could this test have detected a realistic effect? With the control's conversion rate as
# the baseline: the users per variant needed to detect a relative lift of the size below
# with the planned power, and the smallest lift this test's size could detect.

# %%
converted_row = readout.to_frame().set_index("metric").loc["converted"]
baseline = float(converted_row["control_mean"])
n_per_arm = int(min(converted_row["n_control"], converted_row["n_treatment"]))
if 0 < baseline < 1:
    needed = power_calculator(
        baseline, mde=mde_relative, relative=True, power=target_power, alpha=alpha
    )
    detectable = power_calculator(
        baseline, n_per_variant=n_per_arm, power=target_power, alpha=alpha
    )
    display(Markdown("\n\n".join(md(line) for line in needed.summary().splitlines())))
    display(Markdown("\n\n".join(md(line) for line in detectable.summary().splitlines())))
    ax = needed.plot()
    ax.axvline(n_per_arm, color="0.3", lw=1.2, ls=":")
    ax.annotate(
        f"this test: {n_per_arm:,}",
        (n_per_arm, 0.05),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=9,
    )
    plt.show()
    users_needed = int(needed.n_total // needed.variants)
    display(
        Markdown(
            f"To detect a {fmt_pct(mde_relative, 0)} relative lift on a {fmt_pct(baseline)} conversion rate with "
            f"{fmt_pct(target_power, 0)} power needs about **{users_needed:,} users per variant**; this test has "
            f"{n_per_arm:,}. "
            + (
                "It is large enough for that effect."
                if n_per_arm >= users_needed
                else "It is too small for that effect, so *not significant* here does not mean *no effect*."
            )
        )
    )
else:
    users_needed = None
    display(
        Markdown(
            f"The control's conversion rate is {fmt_pct(baseline)}: no power calculation is possible."
        )
    )

# %% [markdown]
# ## Verdict

# %%
row = readout.to_frame().set_index("metric")
verdict = []
if not srm_ok:
    verdict.append(
        "**Do not use this result**: the split of users does not match the design (sample ratio mismatch). "
        "Find and fix the lost or duplicated assignment records first."
    )
elif not checks_ok:
    verdict.append("**Read with care**: at least one trust check is flagged (see above).")


def _lead(row: pd.Series) -> tuple[float, float, float, float, str]:
    """The estimate that leads: within weeks when the split changed from week to week, else pooled."""
    if row.get("headline_estimate") == "stratified":
        return (
            row["strat_abs_lift"],
            row["strat_ci_low"],
            row["strat_ci_high"],
            row["strat_p_value_adjusted"],
            " within weeks (the split changed from week to week, so the pooled lift is confounded)",
        )
    return row["abs_lift"], row["abs_ci_low"], row["abs_ci_high"], row["p_value_adjusted"], ""


def _reading(row: pd.Series, what: str) -> str:
    if row["status"] != "ok":
        return f"{what} could not be compared ({md(row['status'])})."
    lift, _, _, p_adjusted, _ = _lead(row)
    if p_adjusted < alpha:
        return f"{md(project.label(treatment))} {'raised' if lift > 0 else 'lowered'} {what} detectably."
    return f"no detectable change in {what} at this sample size."


b, r = row.loc["converted"], row.loc["revenue"]
b_lift, b_low, b_high, b_p, b_where = _lead(b)
r_lift, r_low, r_high, r_p, r_where = _lead(r)
b_dec = interval_precision(b_low, b_high, fmt_pp)  # decimals at which the interval's ends differ
verdict.append(
    f"**Conversion rate**: {fmt_pct(b['treatment_mean'])} with {md(project.label(treatment))} vs "
    f"{fmt_pct(b['control_mean'])} with {md(project.label(control))}; "
    f"lift{b_where} {b_lift * 100:+.{b_dec}f} pp, "
    f"95 % CI {b_low * 100:+.{b_dec}f} to {b_high * 100:+.{b_dec}f} pp "
    f"(Holm-adjusted p {fmt_p(b_p)}): {_reading(b, 'the conversion rate')}"
)
verdict.append(
    f"**Revenue per user** over {window_days} days: {money(r['treatment_mean'])} vs {money(r['control_mean'])}; "
    f"difference{r_where} {r_lift:+,.2f}, 95 % CI {r_low:+,.2f} to {r_high:+,.2f} "
    f"(Holm-adjusted p {fmt_p(r_p)}): {_reading(r, 'revenue per user')}"
)
display(Markdown("\n\n".join(verdict)))

# %%
metrics = {
    "month": month,
    "experiment": f"{treatment} vs {control}",
    "experiment_name": experiment or None,
    "control": control,
    "treatment": treatment,
    "conversion": conversion,
    "users": int(len(users)),
    "users_per_variant": {str(k): int(v) for k, v in users["variant"].value_counts().items()},
    "srm_ok": srm_ok,
    "checks_ok": checks_ok,
    "converted": {
        "control": float(b["control_mean"]),
        "treatment": float(b["treatment_mean"]),
        "abs_lift": float(b["abs_lift"]),
        "ci": [float(b["abs_ci_low"]), float(b["abs_ci_high"])],
        "p_value_holm": float(b["p_value_adjusted"]),
        "headline_estimate": str(b.get("headline_estimate", "pooled")),
        "within_weeks": {
            "abs_lift": float(b["strat_abs_lift"]),
            "ci": [float(b["strat_ci_low"]), float(b["strat_ci_high"])],
            "p_value_holm": float(b["strat_p_value_adjusted"]),
        },
        "prob_beats_control": float(bayes.at["converted", "prob_beats_control"])
        if "prob_beats_control" in bayes
        else None,
    },
    "revenue_per_user": {
        "control": float(r["control_mean"]),
        "treatment": float(r["treatment_mean"]),
        "abs_lift": float(r["abs_lift"]),
        "ci": [float(r["abs_ci_low"]), float(r["abs_ci_high"])],
        "p_value_holm": float(r["p_value_adjusted"]),
    },
    "cuped_variance_reduction": (
        {
            m: float(v)
            for m, v in cuped.to_frame(detailed=True)
            .set_index("metric")["variance_reduction"]
            .items()
        }
        if cuped is not None
        else None
    ),
    "users_needed_per_variant": users_needed,
}
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
