"""Survey answers of the home-services sample: NPS and CSAT with short comments.

Scores follow one distribution per journey stage (a rounded, clipped normal),
so the population NPS and mean CSAT of each stage are known exactly and go
into ``truth["satisfaction"]``. Comments are picked from templates by
touchpoint, by the sentiment band of the score (detractor / passive /
promoter; CSAT 1-2 / 3 / 4-5) and by language (English or Korean), so the
words always agree with the score.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from journeylab.datasets.simulation import EVENTS, SERVICES

#: Which events trigger a survey, the stage they belong to and the answer rate.
SURVEYED = {
    "quote_request": ("consideration", 0.12),
    "callback": ("consideration", 0.22),
    "booking_started": ("purchase", 0.15),
    "job_completed": ("purchase", 0.22),
    "repeat_booking": ("retention", 0.20),
    "review_posted": ("advocacy", 0.35),
    "referral_sent": ("advocacy", 0.35),
}
#: Mean and sd of the latent score per stage: NPS (0-10) and CSAT (1-5).
#: The purchase stage (the booking form) carries the satisfaction dip.
NPS_LATENT = {
    "consideration": (8.0, 1.9),
    "purchase": (6.2, 2.3),
    "retention": (8.7, 1.6),
    "advocacy": (9.1, 1.4),
}
CSAT_LATENT = {
    "consideration": (4.0, 0.9),
    "purchase": (3.0, 1.1),
    "retention": (4.4, 0.8),
    "advocacy": (4.6, 0.7),
}
DIP_STAGE = "purchase"
KOREAN_SHARE = 0.2

_PRO_EN = {
    "plumbing": "plumber",
    "electrical": "electrician",
    "hvac": "HVAC technician",
    "cleaning": "cleaning crew",
    "handyman": "handyman",
    "appliance_repair": "repair technician",
}
_PRO_KO = {
    "plumbing": "배관 기사님",
    "electrical": "전기 기사님",
    "hvac": "냉난방 기사님",
    "cleaning": "청소 팀",
    "handyman": "수리 기사님",
    "appliance_repair": "가전 수리 기사님",
}

# Templates per touchpoint group and band ("neg", "neu", "pos"); {pro} = the trade.
_TEMPLATES: dict[str, dict[str, dict[str, list[str]]]] = {
    "contact": {
        "en": {
            "neg": [
                "Waited hours for a call-back, nobody called.",
                "Still waiting for a call-back after my request.",
                "Took far too long to call me back.",
                "The quote was way too expensive for a small job.",
                "No reply to my quote request for a whole day.",
            ],
            "neu": [
                "Call-back came eventually, quote seems okay.",
                "The quote was fine but a bit pricey.",
                "Okay answer on the phone, nothing special.",
            ],
            "pos": [
                "Quick call-back, very helpful on the phone.",
                "They called me back within minutes, great service.",
                "Clear quote and a fair price.",
                "Friendly agent explained everything about the {pro} visit.",
            ],
        },
        "ko": {
            "neg": [
                "콜백을 몇 시간이나 기다렸어요. 너무 늦어요.",
                "상담 전화가 오지 않아서 답답했습니다.",
                "견적이 너무 비싸요.",
                "견적 요청했는데 하루 종일 연락이 없었어요.",
            ],
            "neu": [
                "연락은 왔지만 조금 늦었어요.",
                "견적은 괜찮은데 약간 비싼 편이에요.",
                "상담은 보통이었어요.",
            ],
            "pos": [
                "바로 전화 주셔서 좋았어요. 친절했습니다.",
                "견적이 명확하고 가격도 합리적이에요.",
                "상담원이 {pro} 방문에 대해 자세히 설명해 줬어요.",
            ],
        },
    },
    "booking_form": {
        "en": {
            "neg": [
                "The booking form is way too long on my phone.",
                "Booking form kept crashing, gave up on mobile.",
                "Had to re-enter my address three times in the booking form.",
                "Too many fields in the booking form, so frustrating.",
                "Could not pick a time slot, the booking form froze.",
            ],
            "neu": [
                "Booking form works but takes too long.",
                "Booking was okay, a few confusing steps.",
                "Managed to book, the form could be shorter.",
            ],
            "pos": [
                "Easy to book online, took two minutes.",
                "Simple booking form, quick and clear.",
                "Booking a {pro} online was easy.",
            ],
        },
        "ko": {
            "neg": [
                "예약 양식이 너무 길어요. 휴대폰으로는 불편해요.",
                "예약 페이지가 계속 오류가 나서 포기했어요.",
                "주소를 세 번이나 다시 입력해야 했어요. 예약이 너무 불편해요.",
                "예약 양식 항목이 너무 많아요.",
            ],
            "neu": [
                "예약은 됐지만 시간이 좀 걸렸어요.",
                "예약 과정이 조금 복잡했어요.",
                "예약 양식이 더 짧으면 좋겠어요.",
            ],
            "pos": [
                "온라인 예약이 정말 간편했어요.",
                "예약이 빠르고 쉬웠어요.",
                "{pro} 예약이 2분 만에 끝났어요.",
            ],
        },
    },
    "job": {
        "en": {
            "neg": [
                "The {pro} arrived two hours late.",
                "Technician was late and did not call ahead.",
                "Final price was much higher than the quote.",
                "Too expensive for what the {pro} did.",
                "Missed the time window, had to reschedule.",
            ],
            "neu": [
                "Job done, but the {pro} was a bit late.",
                "Decent work, price a little high.",
                "Fine overall, nothing special.",
            ],
            "pos": [
                "The {pro} was on time, friendly and tidy.",
                "Great technician, fixed it fast and explained everything.",
                "Excellent {pro}, very professional.",
                "Punctual and fair price, highly recommend the technician.",
            ],
        },
        "ko": {
            "neg": [
                "{pro}이 두 시간이나 늦게 왔어요.",
                "약속 시간에 늦고 연락도 없었어요.",
                "견적보다 최종 가격이 훨씬 비쌌어요.",
                "작업에 비해 너무 비싸요.",
            ],
            "neu": [
                "작업은 괜찮았는데 조금 늦었어요.",
                "보통이에요. 가격이 약간 높아요.",
                "무난했어요.",
            ],
            "pos": [
                "{pro}이 시간 맞춰 오시고 정말 친절했어요.",
                "기사님이 빠르게 고쳐 주시고 설명도 잘 해주셨어요.",
                "아주 전문적인 {pro}이었어요. 최고예요.",
                "시간 약속도 잘 지키고 가격도 합리적이에요.",
            ],
        },
    },
    "loyal": {
        "en": {
            "neg": [
                "Prices went up since last time.",
                "Second visit was not as good, technician was late.",
                "Booked again but had to wait a week.",
            ],
            "neu": [
                "Consistent service, a bit pricey.",
                "Good as before, nothing new.",
            ],
            "pos": [
                "Reliable as always, same great {pro}.",
                "Always on time, I book them every season.",
                "Great service again, love the technician.",
                "Would recommend to friends and neighbours.",
            ],
        },
        "ko": {
            "neg": [
                "지난번보다 가격이 올랐어요.",
                "이번에는 기사님이 늦었어요.",
            ],
            "neu": [
                "늘 비슷해요. 가격은 조금 비싸요.",
                "이번에도 무난했어요.",
            ],
            "pos": [
                "항상 믿을 수 있어요. 이번에도 최고의 {pro}!",
                "매번 시간 약속을 잘 지켜요.",
                "친구들에게도 추천했어요.",
                "다시 이용할 거예요. 기사님 최고예요.",
            ],
        },
    },
}
_GROUP_OF = {
    "quote_request": "contact",
    "callback": "contact",
    "booking_started": "booking_form",
    "job_completed": "job",
    "repeat_booking": "loyal",
    "review_posted": "loyal",
    "referral_sent": "loyal",
}
_GROUPS = tuple(_TEMPLATES)
_BANDS = ("neg", "neu", "pos")
_LANGS = ("en", "ko")


def _template_bank() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All rendered comments, with offset and count per (group, lang, band, service)."""
    texts: list[str] = []
    offsets, counts = [], []
    for group in _GROUPS:
        for lang in _LANGS:
            pro = _PRO_EN if lang == "en" else _PRO_KO
            for band in _BANDS:
                for service in SERVICES:
                    rendered = [t.format(pro=pro[service]) for t in _TEMPLATES[group][lang][band]]
                    offsets.append(len(texts))
                    counts.append(len(rendered))
                    texts.extend(rendered)
    return np.array(texts, dtype=object), np.array(offsets), np.array(counts)


_TEXTS, _OFFSETS, _COUNTS = _template_bank()


def score_probabilities(mean: float, sd: float, low: int, high: int) -> np.ndarray:
    """P(score = k) for k = low..high of round(N(mean, sd)) clipped to [low, high]."""
    cdf = stats.norm.cdf((np.arange(low - 0.5, high + 1.5) - mean) / sd)
    p = np.diff(cdf)
    p[0] += cdf[0]
    p[-1] += 1 - cdf[-1]
    return p


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
    service: np.ndarray,
    korean: np.ndarray,
    horizon: float,
) -> dict[str, np.ndarray]:
    """Survey answers for surveyed events (arrays of the event log, hours since start)."""
    stages = np.array(sorted({s for s, _ in SURVEYED.values()}, key=list(NPS_LATENT).index))
    rate = np.zeros(len(EVENTS))
    stage_of = np.full(len(EVENTS), -1)
    group_of = np.full(len(EVENTS), -1)
    for name, (stage, share) in SURVEYED.items():
        code = EVENTS.index(name)
        rate[code] = share
        stage_of[code] = list(stages).index(stage)
        group_of[code] = _GROUPS.index(_GROUP_OF[name])
    rows = np.flatnonzero(rng.random(len(event)) < rate[event])
    ev = event[rows]
    stage = stage_of[ev]
    answered = time[rows] + rng.uniform(0.2, 48, len(rows))
    nps = rng.random(len(rows)) < 0.5
    z = rng.standard_normal(len(rows))
    nps_mean = np.array([NPS_LATENT[s][0] for s in stages])[stage]
    nps_sd = np.array([NPS_LATENT[s][1] for s in stages])[stage]
    csat_mean = np.array([CSAT_LATENT[s][0] for s in stages])[stage]
    csat_sd = np.array([CSAT_LATENT[s][1] for s in stages])[stage]
    score = np.where(
        nps,
        np.clip(np.round(nps_mean + nps_sd * z), 0, 10),
        np.clip(np.round(csat_mean + csat_sd * z), 1, 5),
    ).astype(np.int64)
    band = np.where(
        nps,
        np.select([score <= 6, score <= 8], [0, 1], 2),
        np.select([score <= 2, score == 3], [0, 1], 2),
    )
    u = user[rows]
    lang = korean[u].astype(np.int64)
    key = ((group_of[ev] * len(_LANGS) + lang) * len(_BANDS) + band) * len(SERVICES) + service[u]
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
        "touchpoint": np.array(EVENTS, dtype=object)[ev[keep]],
    }
