"""Sentiment lexicons shipped with journeylab, and the scorers that read them.

- ``ko_sentiment.tsv``: a curated Korean review lexicon (stems with a valence on
  the VADER scale −4 … +4, negators, intensifiers, contrast words), written for
  journeylab under its MIT licence (see ``LICENSE`` here).
- ``en_service.tsv``: service-review words missing from VADER ("late",
  "overcharged", "punctual" …), added to VADER's own lexicon, which comes from
  the ``vaderSentiment`` package (MIT) and is not copied here.

Both scorers return a compound score in −1 … +1 normalised like VADER's
(``x / sqrt(x² + 15)``), so English and Korean comments are comparable.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

from journeylab.core.errors import NotComputableError

__all__ = [
    "HANGUL",
    "detect_language",
    "english_analyzer",
    "korean_lexicon",
    "score_english",
    "score_korean",
]

HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> Literal["en", "ko"]:
    """``"ko"`` when a text has at least as many Hangul characters as Latin letters (and some), else ``"en"``.

    Examples
    --------
    >>> detect_language("기사님이 친절했어요"), detect_language("Great technician")
    ('ko', 'en')
    """
    if not isinstance(text, str):
        return "en"
    hangul = len(HANGUL.findall(text))
    return "ko" if hangul and hangul >= len(_LATIN.findall(text)) else "en"


@functools.lru_cache(maxsize=1)
def english_analyzer():
    """Build VADER's analyzer with the service-review words of ``en_service.tsv`` added (once)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise NotComputableError(
            "English sentiment needs the vaderSentiment package: pip install vaderSentiment"
        ) from exc
    analyzer = SentimentIntensityAnalyzer()
    # Service-review words VADER lacks ("late", "overcharged", "punctual" ...), shipped with journeylab.
    extra = (
        resources.files("journeylab.voice.lexicons")
        .joinpath("en_service.tsv")
        .read_text(encoding="utf-8")
    )
    for line in extra.splitlines():
        if line.strip() and not line.startswith("#"):
            word, valence = line.split("\t")
            analyzer.lexicon[word] = float(valence)
    return analyzer


@dataclass(frozen=True)
class _KoreanLexicon:
    words: dict[str, float]
    pre_negators: frozenset[str]
    post_negators: frozenset[str]
    boosters: dict[str, float]
    contrasts: frozenset[str]
    max_len: int

    def kind(self, term: str) -> str | None:
        if term in self.words:
            return "word"
        if term in self.boosters:
            return "booster"
        if term in self.pre_negators or term in self.post_negators:
            return "negator"
        if term in self.contrasts:
            return "contrast"
        return None


@functools.lru_cache(maxsize=1)
def korean_lexicon() -> _KoreanLexicon:
    """Read the Korean lexicon of ``ko_sentiment.tsv`` (once)."""
    text = (
        resources.files("journeylab.voice.lexicons")
        .joinpath("ko_sentiment.tsv")
        .read_text(encoding="utf-8")
    )
    words: dict[str, float] = {}
    boosters: dict[str, float] = {}
    pre: set[str] = set()
    post: set[str] = set()
    contrasts: set[str] = set()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        term, kind, value = line.split("\t")
        term = unicodedata.normalize("NFC", term)
        if kind == "word":
            words[term] = float(value)
        elif kind == "booster":
            boosters[term] = float(value)
        elif kind == "negator":
            (pre if value == "pre" else post).add(term)
        elif kind == "contrast":
            contrasts.add(term)
    every = [*words, *boosters, *pre, *post, *contrasts]
    return _KoreanLexicon(
        words, frozenset(pre), frozenset(post), boosters, frozenset(contrasts), max(map(len, every))
    )


_NEGATION_SCALAR = -0.74  # VADER's factor for a negated word
_NORMALISATION_ALPHA = 15.0  # VADER's compound normalisation x / sqrt(x² + alpha)


def score_korean(text: str) -> float:
    """Compound sentiment of a Korean text (−1 … +1) from the shipped lexicon.

    Scans the text left to right taking the longest lexicon term at each
    position. A pre-negator (안, 못) at the start of a word flips the next
    sentiment word within one word; a post-negator (않, 없, 못하 …) flips the
    sentiment word just before it (same or previous word); a pre-negator
    that finds nothing after it flips the word before it ("추천 안 해요").
    Boosters multiply the next sentiment word; after a contrast word (지만,
    그런데 …) earlier words count half and later ones 1.5 times. The sum is
    normalised like VADER's compound score.
    """
    lex = korean_lexicon()
    s = " ".join(unicodedata.normalize("NFC", text).lower().split())
    items: list[list[float]] = []  # [word index, valence, negated]
    pending_pre: int | None = None
    pending_boost: tuple[int, float] | None = None
    contrast_at: int | None = None
    word_index, i = 0, 0

    def settle_pre(upto_word: int) -> None:
        nonlocal pending_pre
        if pending_pre is not None and upto_word > pending_pre + 1:
            if items and not items[-1][2] and items[-1][0] >= pending_pre - 1:
                items[-1][1] *= _NEGATION_SCALAR
                items[-1][2] = 1
            pending_pre = None

    while i < len(s):
        if s[i] == " ":
            word_index += 1
            i += 1
            continue
        at_start = i == 0 or s[i - 1] == " "
        term = None
        for length in range(min(lex.max_len, len(s) - i), 0, -1):
            candidate = s[i : i + length]
            if lex.kind(candidate) is not None:
                term = candidate
                break
        if term is None:
            i += 1
            continue
        # A phrase with spaces spans several words.
        end_word = word_index + term.count(" ")
        settle_pre(word_index)
        if term in lex.words:
            valence = lex.words[term]
            if valence != 0:
                if pending_boost is not None and word_index - pending_boost[0] <= 1:
                    valence *= pending_boost[1]
                negated = 0
                if pending_pre is not None and word_index - pending_pre <= 1:
                    valence *= _NEGATION_SCALAR
                    negated = 1
                    pending_pre = None
                items.append([end_word, valence, negated])
            pending_boost = None
        elif term in lex.boosters:
            if at_start:
                pending_boost = (word_index, lex.boosters[term])
        elif term in lex.pre_negators or term in lex.post_negators:
            if term in lex.post_negators and not (term in lex.pre_negators and at_start):
                if items and not items[-1][2] and word_index - items[-1][0] <= 1:
                    items[-1][1] *= _NEGATION_SCALAR
                    items[-1][2] = 1
            elif at_start:
                pending_pre = word_index
        elif term in lex.contrasts:
            contrast_at = len(items)
        word_index = end_word
        i += len(term)
    settle_pre(word_index + 2)
    if not items:
        return 0.0
    valences = np.array([v for _, v, _ in items], dtype=float)
    if contrast_at is not None:
        valences[:contrast_at] *= 0.5
        valences[contrast_at:] *= 1.5
    total = float(valences.sum())
    return total / math.sqrt(total * total + _NORMALISATION_ALPHA)


def score_english(text: str) -> float:
    """Compound VADER sentiment of an English text (−1 … +1).

    Examples
    --------
    >>> score_english("not good") < 0
    True
    """
    return float(english_analyzer().polarity_scores(text)["compound"])
