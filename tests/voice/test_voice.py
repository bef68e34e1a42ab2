from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import DataError, NotComputableError, ParameterError, SchemaError
from journeylab.datasets import sample_stage_map
from journeylab.voice.comment_themes import themes
from journeylab.voice.comments import detect_language, sentiment, sentiment_score
from journeylab.voice.emotion import emotion_curve
from journeylab.voice.scores import csat, nps, nps_interval

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "voice.json").read_text(encoding="utf-8")
)
#: The journey order of these answers is the sample's (given explicitly: there is no default map).
SAMPLE_STAGES = sample_stage_map()
NPS_HAND = REFERENCE["nps_hand"]
CSAT_WILSON = {
    tuple(int(v) for v in k.split("/")): tuple(ci)
    for k, ci in REFERENCE["csat_wilson"].items()
    if k != "provenance"
}

Z = stats.norm.ppf(0.975)
STAGES = ["awareness", "consideration", "purchase", "retention", "advocacy"]


# -- NPS ------------------------------------------------------------------------------
def test_nps_shares_and_wald_interval_equal_hand_computation():
    fb = pd.DataFrame({"score": NPS_HAND["scores"]})
    row = nps(fb, by=None, method="wald").to_frame().iloc[0]
    assert (row["promoters"], row["passives"], row["detractors"]) == (5, 2, 3)
    assert row["nps"] == pytest.approx(NPS_HAND["nps"], abs=1e-12)
    # exact arithmetic: var = (p_pro + p_det - (p_pro - p_det)^2) / n
    p_pro, p_det, n = Fraction(5, 10), Fraction(3, 10), 10
    var = (p_pro + p_det - (p_pro - p_det) ** 2) / n
    assert var == Fraction(76, 1000)
    half = Z * math.sqrt(var)
    assert row["nps_ci_low"] == pytest.approx(100 * (0.2 - half), rel=1e-12)
    assert row["nps_ci_high"] == pytest.approx(100 * (0.2 + half), rel=1e-12)
    assert (row["nps_ci_low"], row["nps_ci_high"]) == pytest.approx(NPS_HAND["wald"], abs=1e-4)


def test_nps_adjusted_wald_adds_three_quarters_to_promoters_and_detractors():
    fb = pd.DataFrame({"score": NPS_HAND["scores"]})
    row = nps(fb, by=None).to_frame().iloc[0]
    p_pro, p_det = Fraction(23, 52), Fraction(15, 52)  # (5 + 3/4) / 13, (3 + 3/4) / 13
    centre = p_pro - p_det
    var = (p_pro + p_det - centre**2) / 13
    half = Z * math.sqrt(var)
    assert row["nps"] == 20.0  # the point estimate is not adjusted
    assert row["nps_ci_low"] == pytest.approx(100 * (float(centre) - half), rel=1e-12)
    assert row["nps_ci_high"] == pytest.approx(100 * (float(centre) + half), rel=1e-12)
    assert (row["nps_ci_low"], row["nps_ci_high"]) == pytest.approx(
        NPS_HAND["adjusted_wald"], abs=1e-4
    )


def test_nps_by_stage_in_journey_order_and_by_touchpoint_uses_only_nps_answers():
    fb = pd.DataFrame(
        {
            "stage": ["purchase", "purchase", "awareness", "awareness", "purchase", "awareness"],
            "touchpoint": ["web", "phone", "web", "web", "phone", "phone"],
            "survey": ["nps", "nps", "nps", "nps", "csat", "nps"],
            "score": [10, 3, 9, 7, 1, 0],
        }
    )
    assert nps(fb).to_frame()["stage"].astype(str).tolist() == [
        "purchase",
        "awareness",
    ]  # as they come
    by_stage = nps(fb, stage_map=SAMPLE_STAGES).to_frame()
    assert by_stage["stage"].astype(str).tolist() == ["awareness", "purchase"]
    assert by_stage["n"].tolist() == [3, 2]  # the CSAT answer is left out
    assert by_stage["nps"].tolist() == pytest.approx([0.0, 0.0])
    by_both = nps(fb, by=("stage", "touchpoint")).to_frame()
    assert len(by_both) == 4
    aw_web = by_both[(by_both["stage"] == "awareness") & (by_both["touchpoint"] == "web")].iloc[0]
    assert aw_web["nps"] == pytest.approx(50.0)
    assert nps(fb, by="touchpoint").to_frame()["touchpoint"].tolist() == ["phone", "web"]
    events = fb.assign(
        touchpoint=[
            "review_posted",
            "booking_started",
            "quote_request",
            "quote_request",
            "x",
            "ad_impression",
        ]
    )
    assert nps(events, by="touchpoint", stage_map=SAMPLE_STAGES).to_frame()[
        "touchpoint"
    ].tolist() == [
        "ad_impression",
        "quote_request",
        "booking_started",
        "review_posted",
    ]  # journey order of the events


def test_nps_rejects_bad_input_with_clear_messages():
    with pytest.raises(DataError, match="whole numbers from 0 to 10; found 11"):
        nps(pd.DataFrame({"score": [9, 11]}), by=None)
    with pytest.raises(
        SchemaError, match=r"lacks required column\(s\): 'stage' \(did you mean 'Stage'\?\)"
    ):
        nps(pd.DataFrame({"score": [9], "Stage": ["awareness"]}))
    with pytest.raises(NotComputableError, match="no NPS answers"):
        nps(pd.DataFrame({"score": [4], "survey": ["csat"]}), by=None)
    with pytest.raises(ParameterError, match="method == 'exact'"):
        nps(pd.DataFrame({"score": [9]}), by=None, method="exact")


@pytest.mark.parametrize(
    ("method", "n", "low", "high"),
    [("adjusted-wald", 40, 0.935, 0.965), ("wald", 400, 0.935, 0.965)],
)
def test_nps_interval_coverage_by_simulation(method, n, low, high):
    # 20,000 samples of n answers from a trinomial with NPS = -0.39 (the shape of a dissatisfied stage)
    p = np.array([0.55, 0.29, 0.16])  # detractors, passives, promoters
    counts = np.random.default_rng(11).multinomial(n, p, size=20_000)
    lo, hi = nps_interval(counts[:, 2], counts[:, 0], n, method=method)
    coverage = np.mean((lo <= p[2] - p[0]) & (p[2] - p[0] <= hi))
    assert low <= coverage <= high


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=60))
def test_nps_invariants(scores):
    row = nps(pd.DataFrame({"score": scores}), by=None).to_frame().iloc[0]
    s = np.array(scores)
    assert row["nps"] == pytest.approx(100 * ((s >= 9).mean() - (s <= 6).mean()))
    assert -100 <= row["nps_ci_low"] <= row["nps_ci_high"] <= 100
    lo, hi = nps_interval((s >= 9).sum(), (s <= 6).sum(), len(s), method="wald")
    assert 100 * lo <= row["nps"] + 1e-9 and row["nps"] - 1e-9 <= 100 * hi


# -- CSAT -----------------------------------------------------------------------------
def test_csat_wilson_interval_equals_statsmodels_and_mean_t_interval():
    scores_a = [5, 5, 4, 4, 4, 5, 4, 3, 2, 1, 3, 2]  # 7 of 12 satisfied
    scores_b = [5, 4, 4, 1, 2]  # 3 of 5
    fb = pd.DataFrame(
        {
            "stage": ["purchase"] * 12 + ["retention"] * 5,
            "survey": "csat",
            "score": scores_a + scores_b,
        }
    )
    table = csat(fb).to_frame().set_index("stage")
    for stage, scores, key in [("purchase", scores_a, (7, 12)), ("retention", scores_b, (3, 5))]:
        row = table.loc[stage]
        assert row["satisfied"] == key[0] and row["n"] == key[1]
        assert (row["satisfied_ci_low"], row["satisfied_ci_high"]) == pytest.approx(
            CSAT_WILSON[key], rel=1e-12
        )
        assert (row["satisfied_ci_low"], row["satisfied_ci_high"]) == pytest.approx(
            proportion_confint(*key, alpha=0.05, method="wilson"), rel=1e-12
        )
        lo, hi = stats.t.interval(
            0.95, len(scores) - 1, loc=np.mean(scores), scale=stats.sem(scores)
        )
        assert row["mean_score"] == pytest.approx(np.mean(scores))
        assert (row["mean_ci_low"], row["mean_ci_high"]) == pytest.approx((lo, hi), rel=1e-12)
    assert "Least satisfied: purchase 58.3% [32.0%, 80.7%]" in csat(fb).summary()


def test_csat_rejects_nps_scale():
    with pytest.raises(DataError, match="CSAT scores must be whole numbers from 1 to 5; found 9"):
        csat(pd.DataFrame({"score": [9, 4]}), by=None)


# -- sentiment ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("The technician was great and arrived on time.", 1),
        ("Booking was quick and easy", 1),
        ("not good", -1),
        ("The booking form kept crashing", -1),
        ("Nobody called me back, terrible service", -1),
        ("좋아요", 1),
        ("정말 좋아요", 1),
        ("좋지 않아요", -1),
        ("안 좋아요", -1),
        ("안좋아요", -1),
        ("기사님이 친절했어요", 1),
        ("기사님이 불친절했어요", -1),
        ("문제가 없었어요", 1),
        ("연락이 없어서 답답했어요", -1),
        ("예약 양식이 너무 복잡해요", -1),
        ("추천 안 해요", -1),
        ("만족스럽지 못했어요", -1),
        ("가격은 비쌌지만 기사님이 꼼꼼하게 잘 해주셨어요", 1),
    ],
)
def test_sentiment_signs_in_english_and_korean(text, sign):
    assert np.sign(sentiment_score(text)) == sign


def test_korean_negation_flips_and_intensifier_strengthens():
    plain, boosted, negated = (sentiment_score(t) for t in ["좋아요", "정말 좋아요", "좋지 않아요"])
    assert boosted > plain > 0 > negated
    # negation scales the word by VADER's -0.74, normalised x / sqrt(x^2 + 15)
    x = 1.9 * -0.74
    assert negated == pytest.approx(x / math.sqrt(x * x + 15))


def test_sentiment_result_aligns_with_input_and_detects_language():
    texts = pd.Series(["Great job", "기사님 최고예요", None, "Terrible"], index=[10, 11, 12, 13])
    res = sentiment(texts)
    assert res.scores.index.tolist() == [10, 11, 12, 13]
    assert np.isnan(res.scores[12])
    assert res.languages.fillna("none").tolist() == ["en", "ko", "none", "en"]
    assert res.to_frame()["label"].tolist()[:2] == ["positive", "positive"]
    assert res.to_frame()["label"][13] == "negative"
    assert detect_language("AS 기사님 최고") == "ko" and detect_language("OK") == "en"
    assert sentiment("좋아요", language="ko").scores.iloc[0] > 0
    with pytest.raises(ParameterError, match="language == 'jp'"):
        sentiment("x", language="jp")
    assert "Korean (journeylab lexicon): 1 texts" in res.summary()


def test_sentiment_report_shows_aggregates_not_the_comments():
    long_complaint = "The technician arrived three hours late and left a terrible mess in our kitchen, never again"
    texts = pd.Series(
        [long_complaint, "기사님이 불친절했어요", "Great job", "Great job", "OK", None]
    )
    res = sentiment(texts)
    html, text = res._repr_html_(), res.summary()
    for comment in ("technician arrived", "불친절", "Great job"):
        assert comment not in html and comment not in text
    shown = res.display_frame()
    assert shown.columns.tolist() == [
        "language",
        "texts",
        "mean sentiment (−1 … +1)",
        "positive",
        "neutral",
        "negative",
    ]
    # 4 English texts: complaint negative, "Great job" twice and "OK" positive; 1 Korean, negative
    assert shown["language"].tolist() == [
        "English (VADER lexicon)",
        "Korean (journeylab lexicon)",
        "all",
    ]
    assert shown["texts"].tolist() == ["4", "1", "5"]
    assert shown[["positive", "negative"]].iloc[0].tolist() == ["75.0%", "25.0%"]
    assert shown[["positive", "negative"]].iloc[2].tolist() == ["60.0%", "40.0%"]
    assert res.to_frame()["text"].tolist()[:3] == texts.tolist()[:3]  # the numbers keep the texts
    quoted = sentiment(texts, examples=1)
    summary = quoted.summary()
    assert (
        "Most negative (shortened): “The technician arrived three hours late and left a…”"
        in summary
    )
    assert "Most positive (shortened): “Great job”" in summary and long_complaint not in summary
    assert quoted.excerpts(5)["label"].tolist() == ["negative", "negative", "positive", "positive"]
    assert all(len(e) <= 60 for e in quoted.excerpts(5)["excerpt"])
    with pytest.raises(ParameterError, match="examples == -1"):
        sentiment(texts, examples=-1)


def test_shipped_korean_lexicon_is_well_formed():
    from journeylab.voice.lexicons import korean_lexicon

    lex = korean_lexicon()
    assert len(lex.words) >= 300
    assert all(-4 <= v <= 4 for v in lex.words.values())
    assert {"안", "못"} <= lex.pre_negators and {"않", "없"} <= lex.post_negators
    assert lex.words["불친절"] < 0 < lex.words["친절"]
    assert not set(lex.words) & set(lex.boosters)


_KO_PIECES = [
    "좋아요",
    "안",
    "않아요",
    "너무",
    "최악",
    "친절",
    "불친절",
    "지만",
    "기사님",
    "예약",
    "ㅠㅠ",
]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(_KO_PIECES), min_size=1, max_size=12))
def test_korean_scores_stay_in_range(pieces):
    score = sentiment_score(" ".join(pieces), language="ko")
    assert -1 < score < 1


# -- themes ---------------------------------------------------------------------------
def _comments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stage": ["purchase"] * 5 + ["consideration"] * 4,
            "text": [
                "The booking form kept crashing",
                "예약 양식이 너무 복잡해요",
                "Form was confusing and the price too high",
                "가격이 비쌌어요",
                "Technician was great",
                "Nobody called me back",
                "콜백을 너무 오래 기다렸어요",
                "전화 연락이 없었어요",
                "Friendly technician on the phone",
            ],
        }
    )


def test_themes_count_bilingual_dictionary_matches_per_stage():
    res = themes(_comments(), top=3, stage_map=SAMPLE_STAGES)
    t = res.to_frame()
    purchase = t[t["stage"] == "purchase"].set_index("theme")
    assert purchase.loc["booking form", "mentions"] == 3
    assert purchase.loc["booking form", "share"] == pytest.approx(3 / 5)
    assert purchase.loc["price", "mentions"] == 2
    assert purchase.loc["booking form", "rank"] == 1
    assert purchase.loc["booking form", "mean_sentiment"] < 0
    consideration = t[t["stage"] == "consideration"].set_index("theme")
    assert consideration.loc["waiting for call-back", "mentions"] == 4
    assert consideration.loc["technician", "mentions"] == 1
    assert t["stage"].astype(str).unique().tolist() == [
        "consideration",
        "purchase",
    ]  # journey order
    assert "purchase: most mentioned 'booking form'" in res.summary()


def test_themes_display_formats_shares_and_sentiment_for_readers():
    res = themes(_comments(), top=3)
    t = res.to_frame()
    shown = res.display_frame()
    assert list(shown.columns) == [
        "stage",
        "rank",
        "theme",
        "mentions",
        "share of comments",
        "mean sentiment (−1 … +1)",
    ]
    row = shown[(shown["stage"] == "purchase") & (shown["theme"] == "booking form")].iloc[0]
    assert (row["rank"], row["mentions"], row["share of comments"]) == (1, "3", "60.0%")
    raw = t[(t["stage"] == "purchase") & (t["theme"] == "booking form")]["mean_sentiment"].iloc[0]
    assert row["mean sentiment (−1 … +1)"] == f"{raw:.3g}"  # negative: the sign is the number's own
    assert "mean_sentiment" not in res._repr_html_()
    assert list(t.columns) == ["stage", "theme", "mentions", "share", "mean_sentiment", "rank"]


def test_themes_keywords_strip_stopwords_and_korean_particles():
    fb = pd.DataFrame(
        {
            "stage": "purchase",
            "text": ["the form is slow", "slow form again", "양식이 느려요", "양식을 고쳐주세요"],
        }
    )
    t = themes(fb, method="keywords", top=3).to_frame()
    top = dict(zip(t["theme"], t["mentions"], strict=True))
    assert top["form"] == 2 and top["slow"] == 2 and top["양식"] == 2
    assert "the" not in top


# -- emotion curve --------------------------------------------------------------------
def _journey_feedback() -> pd.DataFrame:
    rows = []
    for stage, scores, texts in [
        ("awareness", [9, 10, 8, 9], ["Great ads", "좋아요", "Fine", "Very helpful"]),
        ("consideration", [8, 9, 7, 10], ["Helpful staff", "친절해요", "OK", "Excellent"]),
        (
            "purchase",
            [3, 5, 2, 7],
            ["The form was awful", "예약 양식이 너무 복잡해요", "Terrible form", "Fine"],
        ),
        ("retention", [9, 9, 10, 6], ["Great", "최고예요", "Love it", "Meh"]),
    ]:
        for score, text in zip(scores, texts, strict=True):
            rows.append({"stage": stage, "survey": "nps", "score": score, "text": text})
    return pd.DataFrame(rows)


def test_emotion_curve_data_worst_stage_and_drop_off():
    fb = _journey_feedback()
    funnel = pd.DataFrame(
        {
            "stage": ["awareness", "consideration", "purchase", "retention"],
            "users": [1000, 400, 100, 40],
        }
    )
    res = emotion_curve(fb, funnel=funnel)
    t = res.to_frame()
    assert t["stage"].tolist() == ["awareness", "consideration", "purchase", "retention"]
    assert t["drop_off"].tolist()[1:] == pytest.approx([0.6, 0.75, 0.6])
    assert res.worst_stage == "purchase" and res.worst_nps_stage == "purchase"
    assert res.leakiest_stage == "purchase"
    expected = sentiment(fb["text"]).scores.groupby(fb["stage"]).mean()
    assert t.set_index("stage")["mean_sentiment"].to_dict() == pytest.approx(expected.to_dict())
    by_stage = nps(fb).to_frame().set_index("stage")
    assert t["nps"].tolist() == pytest.approx(by_stage["nps"].tolist())
    assert t.loc[2, "nps"] == pytest.approx(-75.0)  # purchase: 3 detractors, 1 passive of 4
    assert "The worst-felt stage is also where most customers leave." in res.summary()


def test_emotion_curve_counts_users_per_stage_from_events():
    events = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c", "c", "d"],
            "timestamp": pd.date_range("2026-05-01", periods=8, freq="h", tz="UTC"),
            "event": [
                "ad_impression",
                "site_visit",
                "booking_completed",
                "ad_impression",
                "site_visit",
                "ad_impression",
                "ad_impression",
                "site_visit",
            ],
        }
    )
    with pytest.raises(ParameterError, match="No stage map given"):
        emotion_curve(
            _journey_feedback(), funnel=events
        )  # an event log needs the map to find stages
    res = emotion_curve(_journey_feedback(), SAMPLE_STAGES, funnel=events)
    users = res.to_frame().set_index("stage")["users"]
    # furthest stage: a purchase, b consideration, c awareness, d consideration (no ad seen)
    assert users.to_dict() == {
        "awareness": 4,
        "consideration": 3,
        "purchase": 1,
        "retention": 0,
        "advocacy": 0,
    }
    axes = res.plot()
    assert len(axes) == 2 and axes[0].get_title().startswith("Where customers feel worst")
    assert [b.get_height() for b in axes[1].patches] == [4, 3, 1, 0, 0]
    plt.close("all")
    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is ax
    assert "−25% drop-off" in [lab.get_text() for lab in ax.get_xticklabels()][1]
    plt.close("all")


def test_emotion_curve_accepts_a_funnel_result_with_stage_named_steps():
    class StageFunnel:  # what journeylab.journeys.funnels.funnel(..., steps={"awareness": ..., ...}) returns
        def to_frame(self):
            return pd.DataFrame(
                {
                    "segment": "all",
                    "step": [1, 2, 3, 4],
                    "label": ["awareness", "consideration", "purchase", "retention"],
                    "entrants": [800, 600, 150, 60],
                }
            )

    table = emotion_curve(_journey_feedback(), funnel=StageFunnel()).to_frame()
    assert table["users"].tolist() == [800, 600, 150, 60]
    assert table["drop_off"].tolist()[1:] == pytest.approx([0.25, 0.75, 0.6])


def test_results_render_html_and_plots():
    fb = _journey_feedback()
    funnel = pd.DataFrame({"stage": STAGES, "users": [900, 500, 200, 90, 30]})
    curve = emotion_curve(fb, funnel=funnel)
    assert curve.display_frame()["drop-off"].tolist() == ["–", "44.4%", "60.0%", "55.0%", "66.7%"]
    for res in (
        nps(fb),
        csat(fb.assign(survey="csat", score=fb["score"].clip(1, 5))),
        themes(fb),
        sentiment(fb["text"]),
        curve,
    ):
        html = res._repr_html_()
        assert "jl-table" in html and res.summary().splitlines()[0][:20] in html.replace(
            "&#x27;", "'"
        )
        ax = np.atleast_1d(res.plot())[0]
        assert ax.get_title()
        plt.close("all")


# -- the sample -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def voice_sample(request):
    pytest.importorskip("journeylab.datasets.sample")
    return request.getfixturevalue("sample")


def test_sample_satisfaction_dip_recovered_from_scores_and_comments(voice_sample):
    truth = voice_sample.truth["satisfaction"]
    fb = voice_sample.feedback
    res = emotion_curve(fb, stage_map=voice_sample.stage_map)
    assert res.worst_stage == truth["dip_stage"]  # from the comments
    assert res.worst_nps_stage == truth["dip_stage"]  # from the scores
    lowest_csat = csat(fb).to_frame().sort_values("satisfied_share")["stage"].iloc[0]
    assert str(lowest_csat) == truth["dip_stage"]
    # the comments at the dip stage talk about the booking form, and more negatively than elsewhere
    found = themes(fb).to_frame()
    at_dip = found[found["stage"].astype(str) == truth["dip_stage"]].set_index("theme")
    assert "booking form" in at_dip.index
    assert (
        found.groupby("stage", observed=True)["mean_sentiment"].mean().idxmin()
        == truth["dip_stage"]
    )


def test_sample_nps_intervals_cover_planted_values(voice_sample):
    planted = voice_sample.truth["satisfaction"]["nps_by_stage"]
    # 99% intervals: four calibrated 95% intervals miss at least one planted value about one
    # time in five, so a change in how the sample is drawn could fail a 95% check by chance.
    # Calibration itself is checked by simulation (test_nps_interval_coverage_by_simulation).
    table = (
        nps(voice_sample.feedback, alpha=0.01)
        .to_frame()
        .assign(stage=lambda f: f["stage"].astype(str))
        .set_index("stage")
    )
    scale = 100 if max(abs(v) for v in planted.values()) > 1 else 1
    for stage, value in planted.items():
        lo, hi = table.loc[stage, ["nps_ci_low", "nps_ci_high"]] / (100 / scale)
        assert lo <= value <= hi, (stage, value, lo, hi)


def test_sample_comment_sentiment_follows_the_scores_in_both_languages(voice_sample):
    # the sample's comments are drawn by score band, so sentiment must rise with the score
    fb = voice_sample.feedback
    answers = fb[fb["survey"] == "nps"].assign(sentiment=lambda f: sentiment(f["text"]).scores)
    band = pd.cut(answers["score"], [-1, 6, 8, 10], labels=["detractor", "passive", "promoter"])
    means = answers.groupby([answers["language"], band], observed=True)["sentiment"].mean()
    for language in ("en", "ko"):
        assert (
            means[language]["detractor"] < means[language]["passive"] < means[language]["promoter"]
        )
        part = answers[answers["language"] == language]
        assert stats.spearmanr(part["score"], part["sentiment"]).statistic > 0.6
