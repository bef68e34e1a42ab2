"""Comment sentiment and recurring themes, offline, in English and Korean.

- :func:`sentiment` — comment sentiment in −1 … +1, offline: English with the
  VADER lexicon shipped by the ``vaderSentiment`` package (MIT), Korean with
  the lexicon shipped in ``journeylab/lexicons/ko_sentiment.tsv`` (stems,
  negation such as 안/못/않/없, intensifiers, contrast words); the scorers live
  in :mod:`journeylab.voice.lexicons`. The language of each text is detected from its
  Hangul characters (:func:`detect_language`).
- :func:`~journeylab.voice.comment_themes.themes` — recurring themes per stage from a
  bilingual theme dictionary (:data:`~journeylab.voice.comment_themes.THEMES`), or plain
  keyword/bigram counts, with mean sentiment; in :mod:`journeylab.voice.comment_themes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import check_in, check_range
from journeylab.core.results import Result, fmt_num, fmt_pct
from journeylab.voice.lexicons import detect_language, score_english, score_korean

__all__ = [
    "sentiment",
    "detect_language",
    "sentiment_score",
    "SentimentResult",
]


Language = Literal["auto", "en", "ko"]

#: Compound scores at or above this are "positive", at or below minus this "negative"
#: (the thresholds VADER's authors recommend).
POLARITY_THRESHOLD = 0.05


# ---------------------------------------------------------------------------
# Sentiment
# ---------------------------------------------------------------------------
#: Longest excerpt of a comment shown in a summary, in characters.
EXCERPT_CHARS = 60

_LANGUAGE_NAMES = {"en": "English (VADER lexicon)", "ko": "Korean (journeylab lexicon)"}


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Cut a comment to at most ``limit`` characters at a word boundary, marking the cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def _signed(x: float) -> str:
    text = fmt_num(x)
    return text if text.startswith("-") or text in ("0", "–") else "+" + text


def sentiment_score(text: str, language: Language = "auto") -> float:
    """Sentiment of one text, −1 (very negative) … +1 (very positive); NaN for no text.

    Examples
    --------
    >>> sentiment_score("not good") < 0 < sentiment_score("very good")
    True
    >>> sentiment_score("좋지 않아요") < 0 < sentiment_score("정말 좋아요")
    True
    """
    check_in("language", language, ["auto", "en", "ko"])
    if not isinstance(text, str) or not text.strip():
        return float("nan")
    lang = detect_language(text) if language == "auto" else language
    return score_korean(text) if lang == "ko" else score_english(text)


@dataclass(repr=False, eq=False)
class SentimentResult(Result):
    """Sentiment of each text: ``scores`` (−1 … +1, aligned with the input) and ``languages``.

    The HTML and the summary show aggregates only (texts per language, mean
    sentiment, shares positive and negative), so a shared report does not
    repeat customers' comments word for word. ``examples`` > 0 adds that many
    of the most negative and of the most positive comments, each cut to
    :data:`EXCERPT_CHARS` characters; ``to_frame()`` keeps the full texts.
    """

    texts: pd.Series
    scores: pd.Series
    languages: pd.Series
    examples: int = 0
    title: str = "Comment sentiment"

    def to_frame(self) -> pd.DataFrame:
        """One row per text: ``text``, ``language``, ``sentiment``, ``label`` (positive/neutral/negative)."""
        label = np.select(
            [self.scores >= POLARITY_THRESHOLD, self.scores <= -POLARITY_THRESHOLD],
            ["positive", "negative"],
            "neutral",
        )
        label = pd.Series(label, index=self.scores.index).where(self.scores.notna())
        return pd.DataFrame(
            {
                "text": self.texts,
                "language": self.languages,
                "sentiment": self.scores,
                "label": label,
            }
        )

    def display_frame(self) -> pd.DataFrame:
        """Show texts, mean sentiment and polarity shares per language and overall, never the texts."""
        frame = self.to_frame().dropna(subset=["sentiment"])
        parts = [
            (_LANGUAGE_NAMES.get(lang, str(lang)), part) for lang, part in frame.groupby("language")
        ]
        if len(parts) != 1:
            parts.append(("all", frame))
        rows = [
            {
                "language": name,
                "texts": fmt_num(len(part)),
                "mean sentiment (−1 … +1)": _signed(part["sentiment"].mean()) if len(part) else "–",
                "positive": fmt_pct((part["label"] == "positive").mean()) if len(part) else "–",
                "neutral": fmt_pct((part["label"] == "neutral").mean()) if len(part) else "–",
                "negative": fmt_pct((part["label"] == "negative").mean()) if len(part) else "–",
            }
            for name, part in parts
        ]
        return pd.DataFrame(rows)

    def excerpts(self, n: int | None = None) -> pd.DataFrame:
        """Return the ``n`` most negative and ``n`` most positive distinct comments, shortened.

        Examples
        --------
        >>> sentiment(["Awful, the technician never came back", "Great"]).excerpts(1)["excerpt"].tolist()
        ['Awful, the technician never came back', 'Great']
        """
        n = self.examples if n is None else n
        check_range("n", n, low=0, low_inclusive=True)
        frame = self.to_frame().dropna(subset=["sentiment"]).drop_duplicates("text")
        frame = frame.sort_values("sentiment", kind="stable")
        negative = frame[frame["label"] == "negative"].head(n)
        positive = frame[frame["label"] == "positive"].tail(n).iloc[::-1]
        picked = pd.concat([negative, positive])
        return pd.DataFrame(
            {
                "label": picked["label"].to_numpy(),
                "sentiment": picked["sentiment"].to_numpy(),
                "excerpt": picked["text"].map(_excerpt).to_numpy(),
            }
        )

    def summary(self) -> str:
        """Describe mean sentiment and polarity shares, overall and per language."""
        frame = self.to_frame().dropna(subset=["sentiment"])
        if frame.empty:
            return "No text to score."
        lines = [
            f"{len(frame):,} texts scored: mean sentiment {fmt_num(frame['sentiment'].mean())}, "
            f"{fmt_pct((frame['label'] == 'positive').mean())} positive, "
            f"{fmt_pct((frame['label'] == 'negative').mean())} negative."
        ]
        for lang, part in frame.groupby("language"):
            name = _LANGUAGE_NAMES.get(lang, lang)
            lines.append(f"{name}: {len(part):,} texts, mean {fmt_num(part['sentiment'].mean())}.")
        if self.examples:
            shown = self.excerpts()
            for label in ("negative", "positive"):
                part = shown[shown["label"] == label]
                if len(part):
                    quoted = "; ".join(
                        f"“{e}” ({_signed(v)})"
                        for e, v in zip(part["excerpt"], part["sentiment"], strict=True)
                    )
                    lines.append(f"Most {label} (shortened): {quoted}.")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Histogram of sentiment per language."""
        from journeylab.core.viz import PALETTE, new_axes

        ax = new_axes(ax, figsize=(7, 4))
        frame = self.to_frame().dropna(subset=["sentiment"])
        bins = np.linspace(-1, 1, 21)
        for k, (lang, part) in enumerate(frame.groupby("language")):
            ax.hist(part["sentiment"], bins=bins, alpha=0.6, color=PALETTE[k], label=lang)
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel("sentiment (−1 negative … +1 positive)")
        ax.set_ylabel("texts")
        ax.set_title("Comment sentiment")
        ax.legend(title="language")
        return ax


def sentiment(
    texts: str | Iterable[str] | pd.Series, language: Language = "auto", *, examples: int = 0
) -> SentimentResult:
    """Score free-text comments offline in English and Korean.

    English uses the VADER lexicon and rules (``vaderSentiment``, compound score);
    Korean uses the lexicon shipped with journeylab (stems, negation 안/못/않/없,
    intensifiers, contrast), normalised the same way. Each distinct text is
    scored once.

    Parameters
    ----------
    texts : str, iterable of str or pandas.Series
        The comments; missing or empty texts score NaN.
    language : {"auto", "en", "ko"}
        ``"auto"`` detects Korean from Hangul characters, per text.
    examples : int
        Comments quoted in the summary: that many of the most negative and of
        the most positive, each cut to 60 characters. The default 0 shows
        aggregates only, fit for a shared report.

    Returns
    -------
    SentimentResult
        ``.scores`` is a Series aligned with the input (−1 … +1).

    Examples
    --------
    >>> res = sentiment(["The technician was great", "기사님이 불친절했어요"])
    >>> (res.scores > 0).tolist()
    [True, False]
    """
    check_in("language", language, ["auto", "en", "ko"])
    check_range("examples", examples, low=0, low_inclusive=True)
    if isinstance(texts, str):
        texts = [texts]
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype="object")
    series = series.astype("object").where(series.notna(), None)
    distinct = pd.unique(series.dropna())
    langs = {t: (detect_language(t) if language == "auto" else language) for t in distinct}
    scores = {t: sentiment_score(t, langs[t]) for t in distinct}
    return SentimentResult(
        texts=series,
        scores=series.map(scores).astype(float),
        languages=series.map(langs),
        examples=int(examples),
    )
