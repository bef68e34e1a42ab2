"""Survey answers of the e-commerce sample: NPS and CSAT with short comments.

As in the home-services sample (:mod:`journeylab.datasets.feedback`), scores
follow one rounded, clipped normal per journey stage, so the population NPS
and mean CSAT of each stage are known exactly; the dip is at *retention*
(returns and refunds). Comments are picked by touchpoint, score band and
language: customers in South Korea answer in Korean, everyone else in English.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from journeylab.datasets.feedback import score_probabilities

#: Which events trigger a survey, the stage they belong to and the answer rate.
SURVEYED = {
    "search": ("consideration", 0.02),
    "purchase": ("purchase", 0.22),
    "repeat_purchase": ("retention", 0.15),
    "return_request": ("retention", 0.35),
    "review_submitted": ("advocacy", 0.30),
}
#: Mean and sd of the latent score per stage: NPS (0-10) and CSAT (1-5).
NPS_LATENT = {
    "consideration": (7.6, 2.0),
    "purchase": (8.3, 1.7),
    "retention": (5.4, 2.6),
    "advocacy": (8.9, 1.5),
}
CSAT_LATENT = {
    "consideration": (3.9, 0.9),
    "purchase": (4.2, 0.8),
    "retention": (2.9, 1.2),
    "advocacy": (4.5, 0.7),
}
DIP_STAGE = "retention"

_TEMPLATES: dict[str, dict[str, dict[str, list[str]]]] = {
    "site": {
        "en": {
            "neg": [
                "Search results are useless, could not find the product.",
                "The app keeps freezing on the product pages.",
                "Filters do not work, too slow to browse.",
                "Prices are too high compared to other shops.",
            ],
            "neu": [
                "Found what I wanted eventually.",
                "Okay selection, the site is a bit slow.",
                "Search works, nothing special.",
            ],
            "pos": [
                "Great selection and easy to search.",
                "Found the perfect lamp in two minutes.",
                "Beautiful product photos, love browsing the app.",
            ],
        },
        "ko": {
            "neg": [
                "검색 결과가 엉망이라 상품을 못 찾았어요.",
                "앱이 상품 페이지에서 계속 멈춰요.",
                "가격이 다른 쇼핑몰보다 너무 비싸요.",
            ],
            "neu": ["결국 원하는 상품을 찾았어요.", "상품은 괜찮은데 사이트가 좀 느려요."],
            "pos": ["상품이 다양하고 검색이 쉬워요.", "사진이 예뻐서 구경하는 재미가 있어요."],
        },
    },
    "order": {
        "en": {
            "neg": [
                "Payment failed twice in the app before it went through.",
                "Delivery took far too long.",
                "Checkout kept asking for my card again.",
                "Parcel arrived late and the box was damaged.",
            ],
            "neu": [
                "Order arrived, delivery was a bit slow.",
                "Checkout was fine, shipping costs are high.",
                "Okay experience overall.",
            ],
            "pos": [
                "Fast delivery and lovely packaging.",
                "Easy checkout, arrived the next day.",
                "Great quality, exactly as pictured.",
            ],
        },
        "ko": {
            "neg": [
                "앱에서 결제가 두 번이나 실패했어요.",
                "배송이 너무 오래 걸렸어요.",
                "택배가 늦게 왔고 상자가 찌그러졌어요.",
            ],
            "neu": ["주문은 잘 왔는데 배송이 조금 느렸어요.", "결제는 괜찮았지만 배송비가 비싸요."],
            "pos": [
                "배송이 빠르고 포장이 예뻐요.",
                "결제가 쉽고 다음 날 도착했어요.",
                "사진 그대로 품질이 좋아요.",
            ],
        },
    },
    "returns": {
        "en": {
            "neg": [
                "The return process is a nightmare, still no refund.",
                "Refund took three weeks, never again.",
                "Had to pay for the return label myself, unacceptable.",
                "Nobody answers about my refund.",
            ],
            "neu": [
                "Return worked but the refund was slow.",
                "Returning was okay, a few too many steps.",
            ],
            "pos": [
                "Easy return and quick refund.",
                "Free returns, refund within two days.",
            ],
        },
        "ko": {
            "neg": [
                "반품 절차가 너무 복잡하고 아직 환불을 못 받았어요.",
                "환불까지 3주나 걸렸어요.",
                "반품 배송비를 제가 내야 했어요.",
            ],
            "neu": ["반품은 됐지만 환불이 느렸어요.", "반품 과정이 조금 번거로웠어요."],
            "pos": ["반품이 쉽고 환불이 빨랐어요.", "무료 반품이라 좋았어요."],
        },
    },
    "loyal": {
        "en": {
            "neg": [
                "Quality went down since my last order.",
                "Prices went up, not sure I will order again.",
            ],
            "neu": ["Good as before, nothing new.", "Consistent quality, a bit pricey."],
            "pos": [
                "My favourite shop, always great quality.",
                "Ordered again, love everything.",
                "Would recommend to friends.",
                "Great products, the reviews were right.",
            ],
        },
        "ko": {
            "neg": ["지난번보다 품질이 떨어졌어요.", "가격이 올라서 다시 살지 모르겠어요."],
            "neu": ["늘 비슷해요.", "품질은 좋은데 조금 비싸요."],
            "pos": [
                "제일 좋아하는 쇼핑몰이에요.",
                "또 주문했어요. 다 마음에 들어요.",
                "친구들에게도 추천했어요.",
            ],
        },
    },
}
_GROUP_OF = {
    "search": "site",
    "purchase": "order",
    "return_request": "returns",
    "repeat_purchase": "loyal",
    "review_submitted": "loyal",
}
_GROUPS = tuple(_TEMPLATES)
_BANDS = ("neg", "neu", "pos")
_LANGS = ("en", "ko")


def _template_bank() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All comments, with offset and count per (group, language, band)."""
    texts: list[str] = []
    offsets, counts = [], []
    for group in _GROUPS:
        for lang in _LANGS:
            for band in _BANDS:
                offsets.append(len(texts))
                counts.append(len(_TEMPLATES[group][lang][band]))
                texts.extend(_TEMPLATES[group][lang][band])
    return np.array(texts, dtype=object), np.array(offsets), np.array(counts)


_TEXTS, _OFFSETS, _COUNTS = _template_bank()


def expected_satisfaction() -> dict:
    """Compute the population NPS and mean CSAT per stage of the generating distribution."""
    nps, csat = {}, {}
    for stage, (mean, sd) in NPS_LATENT.items():
        p = score_probabilities(mean, sd, 0, 10)
        nps[stage] = round(float(100 * (p[9:].sum() - p[:7].sum())), 2)
    for stage, (mean, sd) in CSAT_LATENT.items():
        p = score_probabilities(mean, sd, 1, 5)
        csat[stage] = round(float((np.arange(1, 6) * p).sum()), 3)
    return {"nps_by_stage": nps, "csat_by_stage": csat, "dip_stage": DIP_STAGE}


def simulate_feedback(
    rng: np.random.Generator,
    user: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    korean: np.ndarray,
    horizon: float,
    names: Sequence[str],
) -> dict[str, np.ndarray]:
    """Survey answers for surveyed events (arrays of the event log, hours since start).

    ``names`` are the event names of the codes in ``event``.
    """
    stages = np.array(list(NPS_LATENT))
    rate = np.zeros(len(names))
    stage_of = np.full(len(names), -1)
    group_of = np.full(len(names), -1)
    for name, (stage, share) in SURVEYED.items():
        code = list(names).index(name)
        rate[code] = share
        stage_of[code] = list(stages).index(stage)
        group_of[code] = _GROUPS.index(_GROUP_OF[name])
    rows = np.flatnonzero(rng.random(len(event)) < rate[event])
    ev = event[rows]
    stage = stage_of[ev]
    answered = time[rows] + rng.uniform(0.2, 48, len(rows))
    nps = rng.random(len(rows)) < 0.5
    z = rng.standard_normal(len(rows))
    latent = {
        key: np.array([table[s][i] for s in stages])[stage]
        for key, table, i in (
            ("nps_mean", NPS_LATENT, 0),
            ("nps_sd", NPS_LATENT, 1),
            ("csat_mean", CSAT_LATENT, 0),
            ("csat_sd", CSAT_LATENT, 1),
        )
    }
    score = np.where(
        nps,
        np.clip(np.round(latent["nps_mean"] + latent["nps_sd"] * z), 0, 10),
        np.clip(np.round(latent["csat_mean"] + latent["csat_sd"] * z), 1, 5),
    ).astype(np.int64)
    band = np.where(
        nps,
        np.select([score <= 6, score <= 8], [0, 1], 2),
        np.select([score <= 2, score == 3], [0, 1], 2),
    )
    u = user[rows]
    lang = korean[u].astype(np.int64)
    key = (group_of[ev] * len(_LANGS) + lang) * len(_BANDS) + band
    pick = _OFFSETS[key] + (rng.random(len(rows)) * _COUNTS[key]).astype(np.int64)
    keep = answered < horizon
    return {
        "user": u[keep],
        "time": answered[keep],
        "nps": nps[keep],
        "score": score[keep],
        "text": _TEXTS[pick[keep]],
        "korean": lang[keep].astype(bool),
        "stage": stages[stage[keep]],
        "touchpoint": np.array(names, dtype=object)[ev[keep]],
    }
