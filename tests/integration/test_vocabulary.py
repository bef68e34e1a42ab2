"""Any company's vocabulary: the analyses give the same numbers whatever the events and columns are called.

The sample's log is renamed event by event and column by column into an
online shop's vocabulary (``site_visit`` → ``visit``, ``booking_completed`` →
``purchase``, ``device`` → ``platform`` with values ``app``/``web``/``pad``
...), its stage map with it; every analysis run with the shop's names must give
the numbers it gives with the sample's names (reference: the same analysis on
the original log). A hand-made shop log, which the sample never saw, is
counted by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.stages import StageMap
from journeylab.journeys.flows import flow, top_paths, transitions
from journeylab.journeys.funnels import NO_FURTHER_EVENT, funnel, where_instead
from journeylab.maps.behaviour import user_features
from journeylab.maps.journey_diff import compare_journeys
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.pains import pain_points, response_speed
from journeylab.maps.personas import journey_personas
from journeylab.maps.segments import segment_users
from journeylab.reports.widgets import funnel_data

EVENTS = {
    "ad_impression": "ad_view",
    "site_visit": "visit",
    "service_page_view": "view",
    "quote_request": "question",
    "phone_call": "chat",
    "callback": "chat_reply",
    "booking_started": "cart",
    "booking_completed": "purchase",
    "job_completed": "delivery",
    "repeat_booking": "repurchase",
    "review_posted": "review",
    "referral_sent": "referral",
}
COLUMNS = {"device": "platform", "response_minutes": "wait_min"}
DEVICES = {"mobile": "app", "desktop": "web", "tablet": "pad"}
CHANNELS = {"paid_search": "sea", "email": "newsletter", "phone": "support_line"}


def rename_text(value, mapping):
    return mapping.get(value, value) if isinstance(value, str) else value


def rename_map(spec: dict) -> dict:
    """The stage map's YAML form with every event renamed (stages keep their names)."""
    return {
        "stages": [
            {
                **stage,
                "events": [EVENTS[e] for e in stage["events"]],
                "kpis": [{**k, "events": [EVENTS[e] for e in k["events"]]} for k in stage["kpis"]],
            }
            for stage in spec["stages"]
        ]
    }


@pytest.fixture(scope="module")
def sample(small_sample):
    """The first 1,500 users of the small sample, with its stage map and users."""
    keep = small_sample.events["user_id"].drop_duplicates().iloc[:1500]
    events = small_sample.events[small_sample.events["user_id"].isin(keep)].reset_index(drop=True)
    users = small_sample.users[small_sample.users["user_id"].isin(keep)].reset_index(drop=True)
    return events, users, small_sample.stage_map


@pytest.fixture(scope="module")
def shop(sample):
    """The same log in the shop's vocabulary."""
    events, users, stages = sample
    renamed = events.rename(columns=COLUMNS).assign(
        event=events["event"].map(EVENTS),
        platform=events["device"].map(DEVICES),
        channel=events["channel"].map(lambda c: rename_text(c, CHANNELS)),
    )
    shop_users = users.rename(columns=COLUMNS).assign(platform=users["device"].map(DEVICES))
    return renamed, shop_users, StageMap.from_dict(rename_map(stages.to_dict()))


def relabel(frame: pd.DataFrame, columns: dict[str, dict]) -> pd.DataFrame:
    """Translate the sample's names in the given columns into the shop's."""
    out = frame.copy()
    for column, mapping in columns.items():
        out[column] = (
            out[column]
            .astype(object)
            .map(
                lambda v, m=mapping: (
                    tuple(m.get(x, x) for x in v) if isinstance(v, tuple) else rename_text(v, m)
                )
            )
        )
    return out


def assert_same(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> None:
    """Equal tables once both are in the same row order (renaming may reorder the labels)."""

    def plain(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.sort_values(key, kind="stable").reset_index(drop=True)
        for column in out.columns:  # one spelling of "missing" in text columns (None, NaN)
            if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
                out[column] = out[column].astype(object).where(out[column].notna(), None)
        return out

    pd.testing.assert_frame_equal(
        plain(got), plain(want), check_dtype=False, check_categorical=False
    )


SAMPLE_FUNNEL = ["site_visit", "booking_started", "booking_completed"]
SHOP_FUNNEL = [EVENTS[e] for e in SAMPLE_FUNNEL]


def test_renamed_stage_map_is_the_same_journey(sample, shop):
    _, _, stages = sample
    _, _, shop_stages = shop
    assert shop_stages.names == stages.names
    assert shop_stages.stage_of("purchase") == stages.stage_of("booking_completed") == "purchase"


def test_funnel_and_where_instead_give_the_same_numbers(sample, shop):
    events, _, stages = sample
    renamed, _, shop_stages = shop
    want = funnel(events, SAMPLE_FUNNEL, segment="device", stage_map=stages).to_frame()
    got = funnel(renamed, SHOP_FUNNEL, segment="platform", stage_map=shop_stages).to_frame()
    assert_same(got, relabel(want, {"label": EVENTS, "segment": DEVICES}), ["segment", "step"])
    assert want["entrants"].iloc[0] > want["entrants"].iloc[-1] > 0  # a real funnel
    want = where_instead(events, SAMPLE_FUNNEL, after_step=2, n_next=2, stage_map=stages).to_frame()
    got = where_instead(
        renamed, SHOP_FUNNEL, after_step=2, n_next=2, stage_map=shop_stages
    ).to_frame()
    assert_same(got, relabel(want, {"next": EVENTS}), ["units", "next"])
    assert (NO_FURTHER_EVENT,) in set(got["next"])


def test_funnel_widget_data_with_a_filter(sample, shop):
    events, users, stages = sample
    renamed, shop_users, shop_stages = shop
    want = funnel_data(events, SAMPLE_FUNNEL, users=users, filters={"device": "mobile"}, segment="persona",
                       stage_map=stages)  # fmt: skip
    got = funnel_data(renamed, SHOP_FUNNEL, users=shop_users, filters={"platform": "app"}, segment="persona",
                      stage_map=shop_stages)  # fmt: skip
    assert_same(got, relabel(want, {"label": EVENTS}), ["segment", "step"])


@pytest.mark.parametrize("level", ["channel", "event", "stage"])
def test_paths_transitions_and_flows_give_the_same_numbers(sample, shop, level):
    events, _, stages = sample
    renamed, _, shop_stages = shop
    names = {**EVENTS, **CHANNELS}
    rules = {"level": level, "period_end": "2026-10-31"}
    want = transitions(events, conversion="booking_completed", stage_map=stages, **rules).to_frame()
    got = transitions(renamed, conversion="purchase", stage_map=shop_stages, **rules).to_frame()
    assert_same(got, relabel(want, {"from": names, "to": names}), ["from", "to"])
    want = top_paths(
        events, 15, conversion="booking_completed", stage_map=stages, **rules
    ).to_frame()
    got = top_paths(renamed, 15, conversion="purchase", stage_map=shop_stages, **rules).to_frame()
    # same counts per path; ties in journeys may list in another order once renamed
    assert_same(got, relabel(want, {"path": names}), ["path"])
    want = flow(events, conversion="booking_completed", stage_map=stages, **rules).links
    got = flow(renamed, conversion="purchase", stage_map=shop_stages, **rules).links
    key = ["source_step", "source", "target_step", "target"]
    assert_same(got, relabel(want, {"source": names, "target": names}), key)


def test_journey_map_and_differences_give_the_same_numbers(sample, shop):
    events, users, stages = sample
    renamed, shop_users, shop_stages = shop
    want = journey_map(events, stages, month="2026-10", segment="device")
    got = journey_map(renamed, shop_stages, month="2026-10", segment="platform")
    assert_same(
        got.to_frame().assign(segment=lambda f: f["segment"].astype(str), stage=lambda f: f["stage"].astype(str)),
        want.to_frame().assign(segment=lambda f: f["segment"].astype(str).map(DEVICES),
                               stage=lambda f: f["stage"].astype(str)),
        ["segment", "stage"],
    )  # fmt: skip
    pd.testing.assert_series_equal(
        got.kpis.set_index(["segment", "kpi"])["value"].sort_index(),
        want.kpis.assign(segment=want.kpis["segment"].map(DEVICES))
        .set_index(["segment", "kpi"])["value"]
        .sort_index(),
    )
    want = compare_journeys(events, stages, by="device", a="mobile", b="desktop").table
    got = compare_journeys(renamed, shop_stages, by="platform", a="app", b="web").table
    key = ["kind", "item"]
    want = want.assign(
        item=want["item"].map(lambda t: " → ".join(EVENTS.get(x, x) for x in t.split(" → ")))
    )
    assert_same(got, relabel(want, {"from": EVENTS, "to": EVENTS}), key)
    assert want["significant"].any()  # the planted mobile form problem is there to be found


def test_pain_points_give_the_same_numbers(sample, shop):
    events, _, stages = sample
    renamed, _, shop_stages = shop

    def rank(ev, st, conversion, steps, segments, speed):
        return pain_points(
            ev, st, conversion=conversion, steps=[*zip(st.names, st.names[1:], strict=False), *steps],
            segments=[*segments, "touchpoint", speed], min_users=20,
        ).to_frame()  # fmt: skip

    want = rank(
        events, stages, "booking_completed",
        [("booking_started", "booking_completed"), ("phone_call", "booking_completed")], ["device"],
        response_speed(events, request_event="phone_call", response_event="callback",
                       minutes_column="response_minutes", name="speed"),
    )  # fmt: skip
    got = rank(
        renamed, shop_stages, "purchase", [("cart", "purchase"), ("chat", "purchase")], ["platform"],
        response_speed(renamed, request_event="chat", response_event="chat_reply", minutes_column="wait_min",
                       name="speed"),
    )  # fmt: skip
    step = {s: " → ".join(EVENTS.get(x, x) for x in s.split(" → ")) for s in want["step"].unique()}
    segment = {**DEVICES, **CHANNELS}
    want = relabel(want, {"step": step, "segment": segment, "benchmark": segment})
    want = want.assign(dimension=want["dimension"].replace({"device": "platform"}))
    assert_same(got, want, ["step", "dimension", "segment"])
    assert (want["value_at_stake"] > 0).any()


def test_user_features_segments_and_personas_give_the_same_numbers(sample, shop):
    events, users, _ = sample
    renamed, shop_users, _ = shop
    want = user_features(events, conversion="booking_completed", segments=["device"])
    got = user_features(renamed, conversion="purchase", segments=["platform"])
    want = want.rename(
        columns={"device": "platform", **{f"share_{k}": f"share_{v}" for k, v in CHANNELS.items()}}
    )
    want = want.assign(
        platform=want["platform"].map(DEVICES),
        top_channel=want["top_channel"].map(lambda c: rename_text(c, CHANNELS)),
    )
    # a tie between two channels goes to the first by name, which renaming may change
    shares = got.filter(like="share_")
    clear = shares.eq(shares.max(axis=1), axis=0).sum(axis=1) == 1
    assert clear.sum() > 1000
    pd.testing.assert_series_equal(got.loc[clear, "top_channel"], want.loc[clear, "top_channel"])
    pd.testing.assert_frame_equal(
        got.drop(columns="top_channel").sort_index(axis=1),
        want.drop(columns="top_channel").sort_index(axis=1),
    )
    rules = {"app browsers": "platform == 'app' and converted == 0", "bookers": "converted == 1"}
    seg = segment_users(renamed, rules, conversion="purchase", segments=["platform"])
    same = segment_users(
        events, {"app browsers": "device == 'mobile' and converted == 0", "bookers": "converted == 1"},
        conversion="booking_completed", segments=["device"],
    )  # fmt: skip
    pd.testing.assert_series_equal(seg.assignments, same.assignments)
    a = journey_personas(events, k=3, seed=0, conversion="booking_completed", segments=["device"])
    b = journey_personas(renamed, k=3, seed=0, conversion="purchase", segments=["platform"])
    # the same people in the same clusters (the names follow the channels' names)
    pairs = pd.crosstab(a.assignments, b.assignments.reindex(a.assignments.index))
    assert (pairs.gt(0).sum(axis=0) == 1).all() and (pairs.gt(0).sum(axis=1) == 1).all()
    assert a.profiles["users"].tolist() == b.profiles["users"].tolist()
    assert b.profiles["main_platform"].tolist() == a.profiles["main_device"].map(DEVICES).tolist()
    pd.testing.assert_frame_equal(
        a.centroids_z.rename(columns=lambda c: c.replace("device=", "platform="))
        .pipe(
            lambda z: z.rename(
                columns={f"platform={k}": f"platform={v}" for k, v in DEVICES.items()}
            ).rename(columns={f"share_{k}": f"share_{v}" for k, v in CHANNELS.items()})
        )
        .sort_index(axis=1),
        b.centroids_z.sort_index(axis=1),
    )


# -- a hand-made shop log, counted by hand ----------------------------------------------------
@pytest.fixture
def shop_log() -> pd.DataFrame:
    t = pd.Timestamp("2026-10-01", tz="UTC")
    rows = [
        # user, hours, event, channel, platform, value
        ("a", 0, "view", "sea", "app", np.nan), ("a", 1, "cart", None, "app", np.nan),
        ("a", 2, "purchase", None, "app", 40.0),
        ("b", 0, "view", "newsletter", "app", np.nan), ("b", 3, "cart", None, "app", np.nan),
        ("c", 0, "view", "sea", "web", np.nan), ("c", 1, "cart", None, "web", np.nan),
        ("c", 5, "purchase", None, "web", 60.0),
        ("d", 0, "view", "social", "web", np.nan),
        ("e", 2, "view", "newsletter", "web", np.nan), ("e", 4, "cart", None, "web", np.nan),
        ("e", 6, "purchase", None, "web", 50.0),
    ]  # fmt: skip
    frame = pd.DataFrame(
        rows, columns=["user_id", "hours", "event", "channel", "platform", "value"]
    )
    return frame.assign(timestamp=t + pd.to_timedelta(frame.pop("hours"), unit="h"))


SHOP_STAGES = {"stages": [
    {"name": "consideration", "events": ["view"], "kpis": [{"name": "product_views", "events": ["view"]}]},
    {"name": "purchase", "events": ["cart", "purchase"],
     "kpis": [{"name": "orders", "events": ["purchase"]},
              {"name": "sales", "events": ["purchase"], "measure": "value"}]},
]}  # fmt: skip


def test_propensity_features_and_model_give_the_same_numbers(sample, shop):
    from journeylab.customers.propensity import fit_propensity
    from journeylab.customers.snapshots import propensity_features

    events, users, _ = sample
    renamed, shop_users, _ = shop
    options = {"as_of": ["2026-08-01", "2026-09-01"], "horizon_days": 30}
    want = propensity_features(
        events, users=users, conversion_event="booking_completed", segments=["device"],
        columns=["response_minutes"], **options,
    )  # fmt: skip
    got = propensity_features(
        renamed, users=shop_users, conversion_event="purchase", segments=["platform"],
        columns=["wait_min"], **options,
    )  # fmt: skip
    # the same events and channels are read off the data, in the shop's names
    vocabulary = want.attrs["vocabulary"]
    assert sorted(got.attrs["vocabulary"]["count_events"]) == sorted(
        EVENTS[e] for e in vocabulary["count_events"]
    )
    assert sorted(got.attrs["vocabulary"]["channels"]) == sorted(
        rename_text(c, CHANNELS) for c in vocabulary["channels"]
    )
    names = {f"n_{e}": f"n_{EVENTS[e]}" for e in vocabulary["count_events"]}
    names |= {f"touches_{c}": f"touches_{rename_text(c, CHANNELS)}" for c in vocabulary["channels"]}
    names |= {"device": "platform", "response_minutes_max": "wait_min_max",
              "has_response_minutes": "has_wait_min"}  # fmt: skip
    want = want.rename(columns=names).assign(platform=lambda f: f["platform"].map(DEVICES))
    pd.testing.assert_frame_equal(
        got.sort_index(axis=1), want.sort_index(axis=1), check_dtype=False
    )
    a = fit_propensity(want, holdout="random", seed=3)
    b = fit_propensity(got, holdout="random", seed=3)
    assert b.auc == pytest.approx(a.auc, abs=1e-9)


def test_hand_made_shop_log_counted_by_hand(shop_log):
    stages = StageMap.from_dict(SHOP_STAGES)
    t = funnel(shop_log, ["view", "cart", "purchase"], segment="platform").to_frame()
    # app: a (view, cart, purchase), b (view, cart); web: c (all three), d (view), e (all three)
    assert t.set_index(["segment", "step"])["entrants"].to_dict() == {
        ("app", 1): 2, ("app", 2): 2, ("app", 3): 1, ("web", 1): 3, ("web", 2): 2, ("web", 3): 2,
    }  # fmt: skip
    jm = journey_map(shop_log, stages, month="2026-10", compare=None)
    assert jm.to_frame()[["stage", "users", "reached_next"]].values.tolist() == [
        ["consideration", 5, 4], ["purchase", 4, 0]]  # fmt: skip
    assert jm.kpis.set_index("kpi")["value"].to_dict() == {
        "product_views": 5.0,
        "orders": 3.0,
        "sales": 150.0,
    }
    pp = pain_points(shop_log, stages, conversion="purchase", steps=[("cart", "purchase", "at checkout")],
                     segments=["platform"], month="2026-10", min_users=2)  # fmt: skip
    app = pp.to_frame().query("segment == 'app'").iloc[0]
    # app converts 1 of 2 carts, web 2 of 2: gap 0.5 × 2 users × mean order value 50
    assert (app["reached"], app["converted"], app["benchmark"]) == (2, 1, "web")
    assert app["value_at_stake"] == pytest.approx(2 * 0.5 * 50.0)
    assert pp.finding(app).startswith(
        "Users with platform = app drop out at checkout more often than users with "
        "platform = web (50.0% vs 0.0%; 2 reached the step)"
    )
    paths = top_paths(
        shop_log, conversion="purchase", stage_map=stages, period_end="2026-10-02"
    ).to_frame()
    # b and d are still open (no purchase, last touch within the 30-day lookback): censored
    assert dict(zip(paths["path"], paths["conversions"], strict=True)) == {
        ("sea",): 2,
        ("newsletter",): 1,
    }
    paths = top_paths(shop_log, conversion="purchase", stage_map=stages, period_end="2026-10-02",
                      include_censored=True).to_frame()  # fmt: skip
    assert paths.set_index("path")[["conversions", "journeys"]].to_dict("index") == {
        ("sea",): {"conversions": 2, "journeys": 2}, ("newsletter",): {"conversions": 1, "journeys": 2},
        ("social",): {"conversions": 0, "journeys": 1},
    }  # fmt: skip


# -- invariance under any renaming ------------------------------------------------------------
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@settings(max_examples=10, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(0, 40), st.sampled_from(["v", "c", "p", "x"]),
                  st.sampled_from(["m", "d"])),
        min_size=1, max_size=40,
    ),
    new=st.lists(names, min_size=4, max_size=4, unique=True),
    column=names.filter(lambda n: n not in ("user_id", "timestamp", "event", "value", "channel", "session_id")),
)  # fmt: skip
def test_renaming_events_and_columns_never_changes_a_funnel_or_a_journey_map(rows, new, column):
    frame = pd.DataFrame(rows, columns=["user_id", "hour", "event", "seg"])
    log = frame.assign(
        timestamp=pd.Timestamp("2026-10-01", tz="UTC")
        + pd.to_timedelta(frame.pop("hour"), unit="h")
    )
    # every event occurs at least once (a user before the period), so no name is unknown
    known = pd.DataFrame({"user_id": "z", "event": ["v", "c", "p", "x"], "seg": "m",
                          "timestamp": pd.Timestamp("2026-09-01", tz="UTC")})  # fmt: skip
    log = pd.concat([log, known], ignore_index=True)
    mapping = dict(zip(["v", "c", "p", "x"], new, strict=True))
    renamed = log.assign(event=log["event"].map(mapping)).rename(columns={"seg": column})
    steps = ["v", "c", "p"]
    spec = {"stages": [{"name": "look", "events": ["v"]}, {"name": "buy", "events": ["c", "p"]}]}
    new_spec = {
        "stages": [
            {"name": s["name"], "events": [mapping[e] for e in s["events"]]} for s in spec["stages"]
        ]
    }
    in_period = log["timestamp"] >= pd.Timestamp("2026-10-01", tz="UTC")
    if (log.loc[in_period, "event"] == "v").any():
        want = funnel(log, steps, segment="seg", start="2026-10-01").to_frame()
        got = funnel(
            renamed, [mapping[s] for s in steps], segment=column, start="2026-10-01"
        ).to_frame()
        pd.testing.assert_frame_equal(got, want.assign(label=want["label"].map(mapping)))
    if log.loc[in_period, "event"].isin(["v", "c", "p"]).any():
        want = journey_map(log, spec, month="2026-10", segment="seg", compare=None).to_frame()
        got = journey_map(
            renamed, new_spec, month="2026-10", segment=column, compare=None
        ).to_frame()
        pd.testing.assert_frame_equal(got, want)
