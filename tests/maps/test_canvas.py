"""Journey canvas: numbers behind each cell against pandas, KPI change test against statsmodels, layout invariants."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from xml.etree import ElementTree

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from statsmodels.stats import rates as sm_rates
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import DataError, NotComputableError, ParameterError, SchemaError
from journeylab.core.stages import StageMap
from journeylab.datasets import sample_stage_map  # the one import of the sample's map
from journeylab.maps import journey_map, pain_points, response_speed
from journeylab.maps.canvas import JourneyCanvasResult, canvas_of, journey_canvas, kpi_change_test
from journeylab.maps.canvas_layout import A4_LANDSCAPE
from journeylab.voice import nps

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "canvas_reference.json").read_text(encoding="utf-8")
)

# ---------------------------------------------------------------------------
# A hand-made shop journey: 7 stages, its own vocabulary, a "$" in names, Korean labels
# ---------------------------------------------------------------------------
SHOP_STAGES = {
    "stages": [
        {"name": "discover", "events": ["banner_view", "search_hit"],
         "kpis": [{"name": "banner_views", "events": ["banner_view"]},
                  {"name": "searchers", "events": ["search_hit"], "measure": "users"}]},
        {"name": "browse", "events": ["product_page", "compare_tool"],
         "kpis": [{"name": "product_views", "events": ["product_page"]}]},
        {"name": "cart", "events": ["add_to_cart", "coupon_$10_off"],
         "kpis": [{"name": "carts", "events": ["add_to_cart"], "measure": "users"},
                  {"name": "coupons", "events": ["coupon_$10_off"]}]},
        {"name": "checkout", "events": ["checkout_start", "payment_ok"],
         "kpis": [{"name": "orders", "events": ["payment_ok"]},
                  {"name": "order_value", "events": ["payment_ok"], "measure": "value"}]},
        {"name": "delivery", "events": ["parcel_shipped", "parcel_received"],
         "kpis": [{"name": "deliveries", "events": ["parcel_received"]}]},
        {"name": "loyalty", "events": ["reorder"], "kpis": [{"name": "reorders", "events": ["reorder"]}]},
        {"name": "referral", "events": ["share_link", "friend_joined"],
         "kpis": [{"name": "shares", "events": ["share_link"]}]},
    ]
}  # fmt: skip
SHOP_CHANNELS = ["newsletter", "app_push", "partner_$pecial$", "affiliate", "tv_spot"]
SHOP_PATH = [  # (event, probability of going on to it, channel or None)
    ("banner_view", 1.0, "ad"), ("search_hit", 0.5, None), ("product_page", 0.7, "site"),
    ("compare_tool", 0.3, None), ("add_to_cart", 0.55, None), ("coupon_$10_off", 0.3, "partner_$pecial$"),
    ("checkout_start", 0.7, None), ("payment_ok", 0.8, None), ("parcel_shipped", 0.95, None),
    ("parcel_received", 0.97, None), ("reorder", 0.3, "app_push"), ("share_link", 0.4, None),
    ("friend_joined", 0.5, None),
]  # fmt: skip


def shop_log(n_users: int = 900, seed: int = 11) -> pd.DataFrame:
    """Users walking the shop path in September and October 2026 (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        month = "2026-09" if u % 2 else "2026-10"
        t = pd.Timestamp(f"{month}-01", tz="UTC") + pd.Timedelta(
            hours=float(rng.uniform(0, 24 * 25))
        )
        for event, p, channel in SHOP_PATH:
            if rng.random() > p:
                if event in (
                    "search_hit",
                    "compare_tool",
                    "coupon_$10_off",
                    "reorder",
                    "share_link",
                ):
                    continue  # optional steps: skipping them does not end the journey
                break
            if channel == "ad":
                channel = SHOP_CHANNELS[int(rng.integers(0, 5))]
            elif channel == "site":
                channel = ["newsletter", "affiliate"][int(rng.integers(0, 2))]
            t = t + pd.Timedelta(minutes=float(rng.exponential(90)))
            value = round(float(rng.gamma(3, 20)), 2) if event == "payment_ok" else np.nan
            for _ in range(1 + int(rng.poisson(1.5)) if event == "banner_view" else 1):
                rows.append((f"s{u:04d}", t, event, channel, value))
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])
    return frame.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)


def shop_feedback(events: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    picked = events.drop_duplicates("user_id").sample(frac=1.0, random_state=seed).head(400)
    stages = rng.choice(["browse", "cart", "checkout", "delivery", "loyalty"], size=len(picked))
    mean = {"browse": 8.0, "cart": 6.5, "checkout": 4.5, "delivery": 7.5, "loyalty": 9.0}
    scores = np.clip(np.round([rng.normal(mean[s], 2.0) for s in stages]), 0, 10).astype(int)
    return pd.DataFrame(
        {"user_id": picked["user_id"].to_numpy(), "timestamp": picked["timestamp"].to_numpy(),
         "stage": stages, "score": scores}
    )  # fmt: skip


SHOP_PAINS = pd.DataFrame(
    {
        "stage": ["checkout", "checkout", "cart", "delivery"],
        "title": ["Payment fails on app_push users", "Coupon code rejected ($10 off)",
                  "Shipping cost shown late", "Parcels late on Fridays"],
        "value_at_stake": [12500.0, 4300.0, 8000.0, 2100.0],
        "opportunity": ["Retry card payments once before failing", "Accept coupon codes in any case",
                        "Show shipping cost on the product page", "Move Friday pick-ups to Thursday"],
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def shop():
    return shop_log()


@pytest.fixture(scope="module")
def shop_canvas(shop):
    return journey_canvas(
        shop, SHOP_STAGES, month="2026-10", feedback=shop_feedback(shop), pains=SHOP_PAINS,
        labels={"checkout": "예약 완료", "payment_ok": "Payment OK", "tv_spot": "TV spot"}, currency="€",
    )  # fmt: skip


def sample_pains(sample):
    """pain_points with the sample's vocabulary named (the library has no default)."""
    stages = sample_stage_map()
    key_steps = [
        ("booking_started", "booking_completed", "at the booking form"),
        ("phone_call", "booking_completed", "between phone call and booking"),
        ("quote_request", "booking_completed", "between quote request and booking"),
        ("site_visit", "booking_started", "between site visit and booking form"),
    ]
    in_month = sample.events[sample.events["timestamp"].dt.strftime("%Y-%m") == "2026-10"]
    callback_speed = response_speed(
        in_month, request_event="phone_call", response_event="callback", minutes_column="response_minutes",
        name="callback_speed",
    )  # fmt: skip
    return pain_points(
        sample.events, stages, month="2026-10", conversion="booking_completed",
        steps=[*zip(stages.names, stages.names[1:], strict=False), *key_steps],
        segments=["device", "touchpoint", callback_speed],
    )  # fmt: skip


@pytest.fixture(scope="module")
def sample_canvas(sample):
    pains = sample_pains(sample)
    return journey_canvas(
        sample.events, sample_stage_map(), month="2026-10", feedback=sample.feedback, pains=pains
    )


# ---------------------------------------------------------------------------
# Helpers: direct pandas computations and the drawn texts
# ---------------------------------------------------------------------------
def month_rows(events: pd.DataFrame, month: str) -> pd.DataFrame:
    period = pd.Period(month, freq="M")
    start = period.start_time.tz_localize("UTC")
    end = (period + 1).start_time.tz_localize("UTC")
    return events.loc[(events["timestamp"] >= start) & (events["timestamp"] < end)]


def stage_of(events: pd.DataFrame, stage_map: StageMap) -> pd.Series:
    return events["event"].map(lambda e: stage_map.stage_of(e))


def direct_conversion(frame: pd.DataFrame, stage_map: StageMap) -> dict[str, tuple[int, int]]:
    """Per stage: (users at the stage, users with a next-stage event at or after their first stage event)."""
    stage = stage_of(frame, stage_map)
    out = {}
    for k, name in enumerate(stage_map.names[:-1]):
        first = frame.loc[stage == name].groupby("user_id")["timestamp"].min()
        nxt = frame.loc[stage == stage_map.names[k + 1], ["user_id", "timestamp"]]
        joined = nxt.merge(first.rename("first").reset_index(), on="user_id")
        made = joined.loc[joined["timestamp"] >= joined["first"], "user_id"].nunique()
        out[name] = (len(first), made)
    return out


def drawn_texts(fig) -> tuple[list[Text], object]:
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    # Every text of the canvas is an axes text; tick labels of the hidden inset axes are never drawn.
    texts = [t for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.axes is not None and t in t.axes.texts]  # fmt: skip
    return texts, renderer


def overlapping_pairs(fig) -> list[tuple[str, str]]:
    texts, renderer = drawn_texts(fig)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    pairs = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if w > 0 and h > 0:
                pairs.append((a, b))
    return pairs


def outside_figure(fig) -> list[str]:
    texts, renderer = drawn_texts(fig)
    fb = fig.bbox
    return [t.get_text() for t in texts
            if (e := t.get_window_extent(renderer)).x0 < fb.x0 or e.x1 > fb.x1
            or e.y0 < fb.y0 or e.y1 > fb.y1]  # fmt: skip


def cells(result: JourneyCanvasResult, row: str) -> pd.DataFrame:
    frame = result.to_frame()
    return frame.loc[(frame["row"] == row) & frame["value"].notna()]


# ---------------------------------------------------------------------------
# The KPI change test
# ---------------------------------------------------------------------------
def test_kpi_change_test_for_distinct_users_is_the_poisson_wald_test():
    ref = REFERENCE["poisson_wald_120_vs_100"]
    got = kpi_change_test([120], [120], [100], [100]).iloc[0]
    sm = sm_rates.test_poisson_2indep(120, 1, 100, 1, method="wald")
    assert got["z"] == pytest.approx(sm.statistic, rel=1e-12)
    assert got["p_value"] == pytest.approx(sm.pvalue, rel=1e-12)
    assert (got["z"], got["p_value"]) == pytest.approx(
        (ref["value"]["z"], ref["value"]["p_value"]), rel=1e-9
    )
    lo, hi = ref["value"]["ratio_ci"]
    assert (got["change_ci_low"] + 1, got["change_ci_high"] + 1) == pytest.approx(
        (lo, hi), rel=1e-9
    )


def test_kpi_change_test_allows_for_heavy_users():
    # 100 users with 1 event each vs 50 users with 2 each: the same total, twice the variance.
    flat = kpi_change_test([130], [130], [100], [100]).iloc[0]
    heavy = kpi_change_test([130], [130 * 2], [100], [100 * 2]).iloc[0]
    assert heavy["z"] == pytest.approx(flat["z"] / math.sqrt(2), rel=1e-12)
    assert heavy["p_value"] > flat["p_value"]
    none = kpi_change_test([5], [5], [0], [0]).iloc[0]
    assert math.isnan(none["change"]) and none["p_value"] < 0.05
    both_zero = kpi_change_test([0], [0], [0], [0]).iloc[0]
    assert both_zero["p_value"] == 1.0


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(200, 2000),
    mean_events=st.floats(1.0, 6.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_kpi_change_test_keeps_its_level_under_no_change(n_users, mean_events, seed):
    """Two months from one compound-Poisson process: about alpha of 400 replications reject."""
    rng = np.random.default_rng(seed)
    reps = 400
    users = rng.poisson(n_users, size=(reps, 2))
    totals = np.zeros((reps, 2))
    sq = np.zeros((reps, 2))
    for r in range(reps):
        for m in range(2):
            x = 1 + rng.negative_binomial(2, 2 / (2 + mean_events - 1), size=users[r, m])
            totals[r, m], sq[r, m] = x.sum(), (x**2).sum()
    test = kpi_change_test(totals[:, 1], sq[:, 1], totals[:, 0], sq[:, 0])
    rate = float((test["p_value"] < 0.05).mean())
    assert 0.015 <= rate <= 0.095  # 5 % ± 4.5 binomial sd of 400 draws
    naive = kpi_change_test(totals[:, 1], totals[:, 1], totals[:, 0], totals[:, 0])
    if mean_events > 2.5:
        assert float((naive["p_value"] < 0.05).mean()) > rate  # a plain Poisson test over-rejects


# ---------------------------------------------------------------------------
# Numbers behind the cells: the hand-made shop log
# ---------------------------------------------------------------------------
def test_shop_events_channels_and_kpis_match_pandas(shop, shop_canvas):
    sm = StageMap.from_dict(SHOP_STAGES)
    oct_ = month_rows(shop, "2026-10")
    sep = month_rows(shop, "2026-09")
    stage = stage_of(oct_, sm)
    ev = cells(shop_canvas, "events")
    for name in sm.names:
        counts = oct_.loc[stage == name, "event"].value_counts()
        got = ev.loc[ev["stage"] == name].set_index("item")["value"]
        top = counts.sort_values(ascending=False).head(3)
        assert got.to_dict() == {k: float(v) for k, v in top.items()}
    ch = cells(shop_canvas, "channels")
    discover = oct_.loc[stage == "discover", "channel"].dropna().value_counts(normalize=True)
    got = ch.loc[ch["stage"] == "discover"].set_index("item")["value"]
    assert got.to_dict() == pytest.approx(discover.head(3).to_dict(), rel=1e-12)
    assert set(discover.index) == set(SHOP_CHANNELS)  # the "$" name is counted like any other
    kpi = cells(shop_canvas, "kpis").set_index("item")
    assert kpi.at["banner_views", "value"] == (oct_["event"] == "banner_view").sum()
    assert kpi.at["banner_views", "previous"] == (sep["event"] == "banner_view").sum()
    assert kpi.at["carts", "value"] == oct_.loc[oct_["event"] == "add_to_cart", "user_id"].nunique()
    assert kpi.at["order_value", "value"] == pytest.approx(
        oct_.loc[oct_["event"] == "payment_ok", "value"].sum()
    )
    assert kpi.at["coupons", "change"] == pytest.approx(
        (oct_["event"] == "coupon_$10_off").sum() / (sep["event"] == "coupon_$10_off").sum() - 1
    )
    carts_now = oct_.loc[oct_["event"] == "add_to_cart", "user_id"].nunique()
    carts_before = sep.loc[sep["event"] == "add_to_cart", "user_id"].nunique()
    assert kpi.at["carts", "p_value"] == pytest.approx(
        sm_rates.test_poisson_2indep(carts_now, 1, carts_before, 1, method="wald").pvalue, rel=1e-10
    )
    assert kpi.at["carts", "label"] == "Carts"


def test_categorical_event_and_channel_columns_give_the_same_cells(shop, shop_canvas):
    # loaded events keep repeated text as categoricals, whose absent categories count as zero
    coded = shop.astype({"event": "category", "channel": "category"})
    coded["event"] = coded["event"].cat.add_categories(["never_seen"])
    again = journey_canvas(
        coded, SHOP_STAGES, month="2026-10", feedback=shop_feedback(shop), pains=SHOP_PAINS,
        labels={"checkout": "예약 완료", "payment_ok": "Payment OK", "tv_spot": "TV spot"}, currency="€",
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.to_frame(), shop_canvas.to_frame())


def test_shop_conversion_and_emotion_match_pandas_and_statsmodels(shop, shop_canvas):
    sm = StageMap.from_dict(SHOP_STAGES)
    oct_ = month_rows(shop, "2026-10")
    conv = cells(shop_canvas, "conversion").set_index("stage")
    direct = direct_conversion(oct_, sm)
    assert list(conv.index) == sm.names[:-1]
    for name, (users, made) in direct.items():
        assert conv.at[name, "n"] == users
        assert conv.at[name, "value"] == pytest.approx(made / users, rel=1e-12)
        lo, hi = proportion_confint(made, users, method="wilson")
        assert (conv.at[name, "ci_low"], conv.at[name, "ci_high"]) == pytest.approx(
            (lo, hi), rel=1e-10
        )
    feedback = shop_feedback(shop)
    answered = month_rows(feedback, "2026-10")
    emo = cells(shop_canvas, "emotion").set_index("stage")
    for name, group in answered.groupby("stage"):
        score = group["score"]
        direct_nps = 100 * ((score >= 9).mean() - (score <= 6).mean())
        assert emo.at[name, "value"] == pytest.approx(direct_nps, rel=1e-12)
        assert emo.at[name, "n"] == len(group)
    ref = nps(answered, by="stage", stage_map=sm).to_frame().set_index("stage")
    for name in emo.index:
        assert emo.at[name, "ci_low"] == pytest.approx(ref.at[name, "nps_ci_low"], rel=1e-12)
    empty = shop_canvas.cell("emotion", "discover")
    assert empty["note"].tolist() == ["no answers at this stage"]


def test_shop_pains_and_opportunities_follow_the_table(shop_canvas):
    pains = shop_canvas.cell("pains", "checkout")
    assert pains["label"].tolist() == [
        "Payment fails on app_push users",
        "Coupon code rejected ($10 off)",
    ]
    assert pains["value"].tolist() == [12500.0, 4300.0]
    opp = shop_canvas.cell("opportunities", "checkout")
    assert opp["label"].tolist() == [
        "Retry card payments once before failing",
        "Accept coupon codes in any case",
    ]
    assert shop_canvas.cell("pains", "browse")["note"].tolist() == ["no sized pain point"]


def test_shop_canvas_draws_korean_dollar_names_and_no_overlap(shop_canvas):
    ARTIFACTS.mkdir(exist_ok=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        written = shop_canvas.save(ARTIFACTS / "canvas_shop_7_stages")
    assert [p.suffix for p in written] == [".png", ".svg"] and all(
        p.stat().st_size > 10_000 for p in written
    )
    assert not [w for w in record if "missing from font" in str(w.message)]
    fig = shop_canvas.figure
    assert tuple(fig.get_size_inches()) == pytest.approx(A4_LANDSCAPE)
    texts, _ = drawn_texts(fig)
    strings = [t.get_text() for t in texts]
    assert "예약 완료" in strings  # the Korean display label of a stage
    assert any("Coupon $10 off" in s for s in strings)  # "$" drawn as typed
    assert any("Partner $pecial$" in s for s in strings)
    assert all(t.get_parse_math() is False for t in texts)
    assert overlapping_pairs(fig) == []
    assert outside_figure(fig) == []
    svg = ElementTree.parse(ARTIFACTS / "canvas_shop_7_stages.svg").getroot()
    assert svg.tag.endswith("svg") and float(svg.get("width").removesuffix("pt")) == pytest.approx(
        11.69 * 72
    )


# ---------------------------------------------------------------------------
# The bundled sample
# ---------------------------------------------------------------------------
def test_sample_cells_match_pandas(sample, sample_canvas):
    sm = sample_stage_map()
    oct_ = month_rows(sample.events, "2026-10")
    stage = stage_of(oct_, sm)
    ev = cells(sample_canvas, "events").set_index(["stage", "item"])["value"]
    assert (
        ev[("consideration", "service_page_view")] == (oct_["event"] == "service_page_view").sum()
    )
    ch = cells(sample_canvas, "channels")
    for name in ("awareness", "consideration"):
        direct = oct_.loc[stage == name, "channel"].dropna().value_counts(normalize=True).head(3)
        got = ch.loc[ch["stage"] == name].set_index("item")["value"]
        assert got.to_dict() == pytest.approx(direct.to_dict(), rel=1e-12)
    assert sample_canvas.cell("channels", "retention")["note"].tolist() == ["no channel recorded"]
    conv = cells(sample_canvas, "conversion").set_index("stage")
    for name, (users, made) in direct_conversion(oct_, sm).items():
        assert (conv.at[name, "n"], conv.at[name, "value"]) == (
            users,
            pytest.approx(made / users, rel=1e-12),
        )
    kpi = cells(sample_canvas, "kpis").set_index("item")
    jm = journey_map(sample.events, sm, month="2026-10").kpi_frame().set_index("kpi")
    assert kpi["value"].to_dict() == pytest.approx(jm["value"].to_dict(), rel=1e-12)
    assert kpi.at["revenue", "value"] == pytest.approx(
        oct_.loc[oct_["event"] == "booking_completed", "value"].sum()
    )
    fb = month_rows(sample.feedback, "2026-10")
    fb = fb.loc[fb["survey"] == "nps"]
    emo = cells(sample_canvas, "emotion").set_index("stage")
    for name, group in fb.groupby("stage"):
        score = group["score"]
        assert emo.at[name, "value"] == pytest.approx(
            100 * ((score >= 9).mean() - (score <= 6).mean()), rel=1e-12
        )


def test_sample_pains_come_from_pain_points(sample, sample_canvas):
    pains = sample_pains(sample)
    top = pains.top(len(pains.table), clear=True)
    best = top.iloc[0]
    frame = cells(sample_canvas, "pains")
    assert frame["value"].max() == pytest.approx(best["value_at_stake"], rel=1e-12)
    start = best["step"].split(" → ")[0]
    stage = start if start in sample_stage_map().names else sample_stage_map().stage_of(start)
    assert frame.loc[frame["value"].idxmax(), "stage"] == stage
    # every sized pain point drawn sits at the stage its step starts in
    for rec in frame.itertuples(index=False):
        assert rec.value in set(top["value_at_stake"])


def test_sample_canvas_figure_summary_and_html(sample_canvas):
    ARTIFACTS.mkdir(exist_ok=True)
    sample_canvas.save(ARTIFACTS / "canvas_sample_2026-10")
    assert overlapping_pairs(sample_canvas.figure) == []
    assert outside_figure(sample_canvas.figure) == []
    text = sample_canvas.summary()
    assert "Journey canvas, 2026-10: 5 stages" in text and "Lowest NPS at Purchase" in text
    html = sample_canvas._repr_html_()
    assert html.count("data:image/png;base64,") == 1 and "Journey canvas" in html
    ax = sample_canvas.plot()
    assert ax.get_figure() is not sample_canvas.figure
    plt.close(ax.get_figure())


def test_journey_map_canvas_uses_its_own_events_and_period(sample):
    jm = journey_map(sample.events, sample_stage_map(), month="2026-09")
    canvas = canvas_of(jm, labels={"purchase": "예약 완료"})
    assert canvas.period.label == "2026-09" and canvas.previous.label == "2026-08"
    assert canvas.stage_labels["purchase"] == "예약 완료"
    direct = journey_canvas(
        sample.events, sample_stage_map(), month="2026-09", labels={"purchase": "예약 완료"}
    )
    pd.testing.assert_frame_equal(canvas.to_frame(), direct.to_frame())
    assert canvas.row_notes["emotion"] == "no feedback data"
    assert canvas.row_notes["pains"] == "no pain-point data"


# ---------------------------------------------------------------------------
# Layout invariants
# ---------------------------------------------------------------------------
WORDS = st.sampled_from(["booking", "예약", "완료", "$5", "$x$", "checkout_step", "a", "Ωmega", "supercalifragilistic",
                         "(beta)", "10%", "장바구니에_담기", "x_y_z"])  # fmt: skip
NAME = st.lists(WORDS, min_size=1, max_size=4).map("_".join)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_stages=st.integers(2, 8),
    names=st.lists(NAME, min_size=24, max_size=24, unique=True),
    seed=st.integers(0, 999),
)
def test_no_text_overlaps_for_any_stage_count_and_labels(n_stages, names, seed):
    rng = np.random.default_rng(seed)
    stages = []
    for k in range(n_stages):
        events = names[3 * k : 3 * k + 3]
        stages.append({"name": f"stage_{k}_{names[k][:12]}", "events": events,
                       "kpis": [{"name": f"kpi_{e}", "events": [e]} for e in events[: 1 + k % 4]]})  # fmt: skip
    sm = StageMap.from_dict({"stages": stages})
    rows = []
    for u in range(120):
        t = pd.Timestamp("2026-10-01", tz="UTC") + pd.Timedelta(hours=int(rng.integers(0, 600)))
        for k in range(n_stages):
            if rng.random() < 0.25:
                break
            event = stages[k]["events"][int(rng.integers(0, 3))]
            rows.append((f"u{u}", t + pd.Timedelta(hours=k), event, names[(k + u) % 24], 10.0))
    events = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])
    pains = pd.DataFrame({"stage": [s["name"] for s in stages[:2]], "title": names[:2],
                          "value_at_stake": [1e6, 12.5], "opportunity": [" ".join(names[2:6]), names[6]]})  # fmt: skip
    canvas = journey_canvas(events, sm, month="2026-10", pains=pains)
    fig = canvas.figure
    assert overlapping_pairs(fig) == []
    assert outside_figure(fig) == []
    texts, _ = drawn_texts(fig)
    assert all(t.get_parse_math() is False for t in texts)
    for stage in sm.names:  # every cell either draws numbers or says why not
        for row in ("events", "channels", "kpis", "pains", "opportunities"):
            assert len(canvas.cell(row, stage)) >= 1


def test_eight_stages_fit_a4_without_overlap(shop):
    spec = {"stages": SHOP_STAGES["stages"] + [
        {"name": "win_back_and_reactivation_campaigns", "events": ["winback_mail"],
         "kpis": [{"name": "winbacks", "events": ["winback_mail"]}]}]}  # fmt: skip
    extra = shop.loc[shop["event"] == "reorder"].assign(event="winback_mail")
    events = pd.concat([shop, extra], ignore_index=True)
    canvas = journey_canvas(
        events, spec, month="2026-10", feedback=shop_feedback(shop), pains=SHOP_PAINS
    )
    canvas.save(ARTIFACTS / "canvas_shop_8_stages.png")
    assert tuple(canvas.figure.get_size_inches()) == pytest.approx(A4_LANDSCAPE)
    assert overlapping_pairs(canvas.figure) == []
    assert outside_figure(canvas.figure) == []


def test_canvas_on_a_given_axes(shop_canvas, tmp_path):
    fig, ax = plt.subplots(figsize=(11.69, 8.27))
    out = shop_canvas.plot(ax=ax)
    assert out is ax
    assert overlapping_pairs(fig) == []
    plt.close(fig)


# ---------------------------------------------------------------------------
# Rows without data and bad input
# ---------------------------------------------------------------------------
def test_rows_without_data_say_so(shop):
    no_channel = shop.drop(columns="channel")
    canvas = journey_canvas(no_channel, SHOP_STAGES, month="2026-10", previous=False)
    assert canvas.row_notes == {
        "channels": "the events have no 'channel' column",
        "emotion": "no feedback data",
        "pains": "no pain-point data",
        "opportunities": "no pain-point data",
    }
    texts, _ = drawn_texts(canvas.figure)
    strings = {t.get_text() for t in texts}
    assert {
        "no feedback data",
        "no pain-point data",
        "the events have no 'channel' column",
    } <= strings
    assert canvas.to_frame()["change"].isna().all()
    late = journey_canvas(shop, SHOP_STAGES, month="2026-10", feedback=shop_feedback(shop).assign(
        timestamp=pd.Timestamp("2026-12-01", tz="UTC")))  # fmt: skip
    assert late.row_notes["emotion"] == "no feedback answered in 2026-10"


def test_feedback_by_touchpoint_is_placed_at_the_events_stage(shop):
    fb = pd.DataFrame({"touchpoint": ["payment_ok"] * 3 + ["product_page"] * 2,
                       "score": [10, 9, 2, 10, 10], "timestamp": pd.Timestamp("2026-10-05", tz="UTC")})  # fmt: skip
    canvas = journey_canvas(shop, SHOP_STAGES, month="2026-10", feedback=fb)
    emo = cells(canvas, "emotion").set_index("stage")
    assert emo.at["checkout", "value"] == pytest.approx(100 * (2 / 3 - 1 / 3))
    assert emo.at["browse", "value"] == pytest.approx(100.0)


def test_bad_input_names_the_column_rows_and_what_to_do(shop):
    bad_stage = SHOP_PAINS.assign(stage=["checkout", "chekout", "cart", "delivery"])
    with pytest.raises(SchemaError, match="'chekout'.*did you mean 'checkout'") as info:
        journey_canvas(shop, SHOP_STAGES, month="2026-10", pains=bad_stage)
    assert info.value.column == "stage" and info.value.rows == [2]
    bad_value = SHOP_PAINS.assign(value_at_stake=[1.0, -5.0, "x", 2.0])
    with pytest.raises(DataError, match="numbers >= 0") as info:
        journey_canvas(shop, SHOP_STAGES, month="2026-10", pains=bad_value)
    assert info.value.rows == [2, 3] and "what to do" in str(info.value)
    with pytest.raises(SchemaError, match="opportunity"):
        journey_canvas(
            shop, SHOP_STAGES, month="2026-10", pains=SHOP_PAINS.drop(columns="opportunity")
        )
    with pytest.raises(SchemaError, match="'chanel'.*did you mean 'channel'"):
        journey_canvas(shop, SHOP_STAGES, month="2026-10", channel_column="chanel")
    with pytest.raises(SchemaError, match="names a stage of the stage map"):
        journey_canvas(shop, SHOP_STAGES, month="2026-10",
                       feedback=pd.DataFrame({"stage": ["Checkout"], "score": [9]}))  # fmt: skip
    with pytest.raises(ParameterError, match="2 to 10 stages"):
        journey_canvas(
            shop, {"stages": [{"name": "only", "events": ["banner_view"]}]}, month="2026-10"
        )
    with pytest.raises(ParameterError, match="needs a stage map"):
        journey_canvas(shop, None, month="2026-10")
    with pytest.raises(NotComputableError, match="No events in the period 2027-01"):
        journey_canvas(shop, SHOP_STAGES, month="2027-01")
    with pytest.raises(ParameterError, match="top_events"):
        journey_canvas(shop, SHOP_STAGES, month="2026-10", top_events=0)
    with pytest.raises(ParameterError, match="suffix"):
        journey_canvas(shop, SHOP_STAGES, month="2026-10").save("x.jpeg")
    with pytest.raises(SchemaError, match="'event'"):
        journey_canvas(shop.drop(columns="event"), SHOP_STAGES, month="2026-10")


def test_segmented_journey_map_draws_all_users(shop):
    jm = journey_map(shop, SHOP_STAGES, month="2026-10", segment="channel")
    canvas = canvas_of(jm)
    whole = journey_canvas(shop, SHOP_STAGES, month="2026-10")
    pd.testing.assert_frame_equal(canvas.to_frame(), whole.to_frame())
    from journeylab.maps.canvas import canvas_from_journey_map

    with pytest.raises(ParameterError, match="split by 'channel'"):
        canvas_from_journey_map(jm, shop)
