"""Recurring themes of comments per stage, in English and Korean, with their mean sentiment.

Themes come from a bilingual theme dictionary (:data:`THEMES`), or are plain
keyword/bigram counts; the sentiment is that of :func:`journeylab.voice.comments.sentiment`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import Result, fmt_num, fmt_pct
from journeylab.core.stages import StageMap
from journeylab.voice.comments import _signed, sentiment
from journeylab.voice.feedback import By, _by_columns, _label, _ordered
from journeylab.voice.lexicons import HANGUL

__all__ = [
    "THEMES",
    "themes",
    "ThemesResult",
]


# ---------------------------------------------------------------------------
# Themes
# ---------------------------------------------------------------------------
#: Bilingual theme dictionary: theme -> English word patterns (regular expressions,
#: matched on whole words, case-insensitive) and Korean stems (matched anywhere in the text).
THEMES: dict[str, dict[str, list[str]]] = {
    "booking form": {
        "en": [
            r"booking form",
            r"\bform\b",
            r"\bbooking\b",
            r"book(?:ing)? online",
            r"online booking",
            r"booking page",
            r"website",
            r"\bsite\b",
            r"\bapp\b",
            r"checkout",
            r"fields?",
            r"\bpage\b",
        ],
        "ko": [
            "예약 양식",
            "예약양식",
            "양식",
            "입력",
            "예약 페이지",
            "예약페이지",
            "홈페이지",
            "사이트",
            "앱",
            "어플",
            "폼",
            "온라인 예약",
            "예약 과정",
            "예약하기",
            "예약이",
        ],
    },
    "waiting for call-back": {
        "en": [
            r"call[- ]?back",
            r"called back",
            r"call me back",
            r"nobody called",
            r"no one called",
            r"never called",
            r"\bwait(?:ed|ing)?\b",
            r"\bphone\b",
            r"hold",
            r"respon(?:se|d|ded)",
        ],
        "ko": ["콜백", "전화", "연락", "회신", "기다", "대기", "응답", "답변"],
    },
    "price": {
        "en": [
            r"pric(?:e|es|ey|ing)",
            r"expensive",
            r"cheap",
            r"\bcost",
            r"\bfees?\b",
            r"\bquotes?\b",
            r"overcharg",
            r"\bcharg",
            r"afford",
            r"value for money",
            r"\bbill",
        ],
        "ko": [
            "가격",
            "비싸",
            "비쌌",
            "비싼",
            "비용",
            "요금",
            "견적",
            "저렴",
            "금액",
            "바가지",
            "가성비",
            "청구",
        ],
    },
    "technician": {
        "en": [
            r"technician",
            r"\btech\b",
            r"engineer",
            r"plumber",
            r"electrician",
            r"\bstaff",
            r"\bcrew\b",
            r"\bworkers?\b",
            r"\brude\b",
            r"polite",
            r"friendly",
            r"professional",
        ],
        "ko": ["기사", "직원", "엔지니어", "기술자", "작업자", "친절", "무례", "전문"],
    },
    "punctuality": {
        "en": [
            r"\blate\b",
            r"on time",
            r"punctual",
            r"delay",
            r"arriv",
            r"no[- ]show",
            r"showed up",
            r"\bearly\b",
            r"schedul",
            r"time slot",
        ],
        "ko": [
            "늦",
            "제시간",
            "제 시간",
            "정시",
            "지각",
            "도착",
            "시간 약속",
            "약속 시간",
            "노쇼",
            "지연",
        ],
    },
    "quality of work": {
        "en": [
            r"\bfix",
            r"repair",
            r"quality",
            r"workmanship",
            r"\bjob\b",
            r"\bleak",
            r"broken",
            r"install",
        ],
        "ko": [
            "수리",
            "작업",
            "품질",
            "꼼꼼",
            "마무리",
            "고쳐",
            "고쳤",
            "고장",
            "하자",
            "해결",
            "시공",
            "설치",
        ],
    },
    "cleanliness": {
        "en": [r"\bclean", r"\btidy", r"\bmess", r"dirty"],
        "ko": ["청소", "깨끗", "깔끔", "지저분", "더럽", "정리"],
    },
    "communication": {
        "en": [
            r"\bupdates?\b",
            r"informed",
            r"explain",
            r"communicat",
            r"\btold\b",
            r"message",
            r"\btexts?\b",
            r"e-?mails?",
            r"reminder",
        ],
        "ko": ["안내", "설명", "소통", "문자", "메시지", "알림", "이메일"],
    },
    "ease and speed": {
        "en": [r"\beasy\b", r"\bquick", r"\bfast\b", r"simple", r"smooth", r"convenien", r"hassle"],
        "ko": ["쉽", "쉬웠", "빠르", "빨리", "빨랐", "간편", "편리", "신속", "번거"],
    },
    "recommendation": {
        "en": [r"recommend", r"\bfriends?\b", r"\bagain\b", r"would use", r"referr"],
        "ko": ["추천", "재이용", "또 이용", "다시 이용", "지인"],
    },
    "advertising": {
        "en": [r"\bads?\b", r"advert", r"\bspam", r"too many e-?mails"],
        "ko": ["광고", "스팸"],
    },
}

_EN_STOPWORDS = frozenset(
    "a an the and or but if so to of in on at for from by with about as into over after before "
    "is are was were be been being am do does did have has had i me my we our you your he she it "
    "they them their this that these those there here very really just too also not no yes can "
    "could would will should than then when what which who how all any some more most much many "
    "again once only own same such up down out off s t don didn wasn isn got get us".split()
)
_KO_STOPWORDS = frozenset(
    "그리고 그래서 그냥 너무 정말 진짜 좀 조금 이번 저는 제가 저희 우리 그 이 저 것 수 때 더 잘 및 등 요".split()
)
_KO_PARTICLES = re.compile(
    r"(?:에서는|에서|으로|에게|까지|부터|이랑|하고|은|는|이|가|을|를|에|도|의|로|와|과|요)$"
)
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[\uac00-\ud7a3]+")


@dataclass(repr=False, eq=False)
class ThemesResult(Result):
    """Top recurring themes per group with mention counts and mean sentiment."""

    table: pd.DataFrame
    by: list[str]
    method: str
    top: int
    title: str = "Recurring themes"

    def to_frame(self) -> pd.DataFrame:
        """One row per (group, theme): ``mentions``, ``share`` of the group's comments, ``mean_sentiment``, ``rank``."""
        return self.table.copy()

    def display_frame(self) -> pd.DataFrame:
        """Per group, the ranked themes with mentions, share of comments and mean sentiment."""
        t = self.table
        shown = {col: t[col].astype(str).to_numpy() for col in self.by}
        shown.update(
            {
                "rank": t["rank"].astype(int).to_numpy(),
                "theme" if self.method == "dictionary" else "word or pair": t["theme"]
                .astype(str)
                .to_numpy(),
                "mentions": t["mentions"].map(fmt_num).to_numpy(),
                "share of comments": t["share"].map(fmt_pct).to_numpy(),
                "mean sentiment (−1 … +1)": t["mean_sentiment"].map(_signed).to_numpy(),
            }
        )
        return pd.DataFrame(shown)

    def summary(self) -> str:
        """Describe the leading theme of each group."""
        t = self.table
        if t.empty:
            return "No themes found in the comments."
        lines = [
            f"Top {self.top} themes per {' and '.join(self.by) or 'all comments'} ({self.method})."
        ]
        for label, part in t.groupby(_label(t, self.by), sort=False):
            first = part.iloc[0]
            worst = part.loc[part["mean_sentiment"].idxmin()]
            lines.append(
                f"{label}: most mentioned '{first['theme']}' ({fmt_pct(first['share'])} of comments, "
                f"sentiment {fmt_num(first['mean_sentiment'])}); most negative '{worst['theme']}' "
                f"({fmt_num(worst['mean_sentiment'])})."
            )
        return "\n".join(lines)

    def plot(self, ax=None):
        """Heat map: themes × groups, colour = mean sentiment, number = mentions."""
        import seaborn as sns

        from journeylab.core.viz import DIVERGING, new_axes

        t = self.table.assign(_group=_label(self.table, self.by))
        order = list(pd.unique(t["_group"]))
        sent = t.pivot_table(
            index="theme", columns="_group", values="mean_sentiment", observed=True
        )
        count = t.pivot_table(index="theme", columns="_group", values="mentions", observed=True)
        cols = [c for c in order if c in sent.columns]
        rows = count.sum(axis=1).sort_values(ascending=False).index
        sent, count = sent.loc[rows, cols], count.loc[rows, cols]
        annot = count.map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
        ax = new_axes(ax, figsize=(1.4 * len(cols) + 3, 0.45 * len(sent) + 1.8))
        with warnings.catch_warnings():
            # seaborn's heatmap still calls Colormap.set_bad, which matplotlib is phasing out.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(
                sent,
                ax=ax,
                cmap=DIVERGING,
                center=0,
                vmin=-1,
                vmax=1,
                annot=annot,
                fmt="",
                linewidths=0.5,
                cbar_kws={"label": "mean sentiment"},
            )
        ax.grid(False)
        ax.set_xlabel(" · ".join(self.by))
        ax.set_ylabel("")
        ax.set_title("Themes in comments (number = mentions)")
        return ax


def _theme_hits(text: pd.Series, language: pd.Series) -> pd.DataFrame:
    """Flag, per comment and theme, whether the comment mentions the theme (in its language)."""
    lower = text.fillna("").str.lower()
    is_ko = language.eq("ko")
    hits = {}
    for theme, patterns in THEMES.items():
        en = lower.str.contains("|".join(patterns["en"]), regex=True)
        ko = lower.str.contains("|".join(re.escape(p) for p in patterns["ko"]), regex=True)
        hits[theme] = en.where(~is_ko, ko)
    return pd.DataFrame(hits, index=text.index)


def _keywords(text: str) -> list[str]:
    tokens = []
    for tok in _TOKEN.findall(text.lower()):
        if HANGUL.match(tok):
            tok = _KO_PARTICLES.sub("", tok) if len(tok) > 1 else tok
            if tok in _KO_STOPWORDS or len(tok) < 2:
                continue
        elif tok in _EN_STOPWORDS or len(tok) < 3:
            continue
        tokens.append(tok)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def themes(
    feedback: pd.DataFrame,
    by: By = "stage",
    top: int = 5,
    *,
    method: Literal["dictionary", "keywords"] = "dictionary",
    stage_map: StageMap | None = None,
) -> ThemesResult:
    """Top recurring themes in comments per stage, with counts and mean sentiment.

    ``method="dictionary"`` matches the bilingual :data:`THEMES` dictionary
    (booking form, waiting for call-back, price, technician, punctuality,
    quality of work, cleanliness, communication, ease and speed,
    recommendation, advertising); a comment can mention several themes.
    ``method="keywords"`` counts words and bigrams after removing English and
    Korean stop-words (Korean particles stripped from word ends).

    Parameters
    ----------
    feedback : pandas.DataFrame
        Needs ``text``; ``language`` is detected when absent.
    by : str, sequence of str or None
        Grouping columns (``"stage"`` by default).
    top : int
        Themes kept per group, most mentioned first.
    method : {"dictionary", "keywords"}
    stage_map : StageMap, optional
        Orders stages along the journey.

    Returns
    -------
    ThemesResult

    Examples
    --------
    >>> fb = pd.DataFrame({"stage": ["purchase", "purchase"],
    ...                    "text": ["The booking form kept crashing", "예약 양식이 너무 복잡해요"]})
    >>> top = themes(fb).to_frame().iloc[0]
    >>> top["theme"], int(top["mentions"])
    ('booking form', 2)
    """
    by_cols = _by_columns(by)
    check_in("method", method, ["dictionary", "keywords"])
    check_range("top", top, low=1, low_inclusive=True)
    if not isinstance(feedback, pd.DataFrame):
        raise ParameterError(f"feedback must be a pandas DataFrame, not {type(feedback).__name__}.")
    require_columns(feedback, ["text", *by_cols], what="feedback")
    rows = feedback[feedback["text"].notna() & (feedback["text"].astype(str).str.strip() != "")]
    if rows.empty:
        raise NotComputableError("No comment text to find themes in (the text column is empty).")
    rows = _ordered(rows, by_cols, stage_map)
    scored = sentiment(rows["text"].astype(str))
    language = rows["language"] if "language" in rows.columns else scored.languages
    rows = rows.assign(_sentiment=scored.scores.to_numpy(), _language=language.to_numpy())
    group_keys = by_cols or ["_all"]
    if not by_cols:
        rows = rows.assign(_all="all comments")
    totals = rows.groupby(group_keys, observed=True).size().rename("comments")
    if method == "dictionary":
        hits = _theme_hits(rows["text"].astype(str), rows["_language"])
        long = hits.stack().rename("hit").reset_index(level=1).rename(columns={"level_1": "theme"})
        long = long[long["hit"]].join(rows[[*group_keys, "_sentiment"]])
    else:
        words = rows["text"].astype(str).map(_keywords).rename("theme")
        long = (
            rows[[*group_keys, "_sentiment"]].join(words).explode("theme").dropna(subset=["theme"])
        )
    if long.empty:
        table = pd.DataFrame(
            columns=[*by_cols, "theme", "mentions", "share", "mean_sentiment", "rank"]
        )
        return ThemesResult(table=table, by=by_cols, method=method, top=top)
    table = (
        long.groupby([*group_keys, "theme"], observed=True)
        .agg(mentions=("_sentiment", "size"), mean_sentiment=("_sentiment", "mean"))
        .reset_index()
        .join(totals, on=group_keys)
    )
    table["share"] = table["mentions"] / table["comments"]
    table = table.sort_values(
        [*group_keys, "mentions", "theme"], ascending=[True] * len(group_keys) + [False, True]
    )
    table["rank"] = table.groupby(group_keys, observed=True).cumcount() + 1
    table = table[table["rank"] <= top].drop(columns="comments").reset_index(drop=True)
    cols = [*by_cols, "theme", "mentions", "share", "mean_sentiment", "rank"]
    return ThemesResult(table=table[cols], by=by_cols, method=method, top=top)
