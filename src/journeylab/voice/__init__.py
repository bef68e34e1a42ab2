"""Voice of the customer: NPS and CSAT per stage and touchpoint, sentiment and themes of comments."""

from journeylab.voice.comment_themes import THEMES, ThemesResult, themes
from journeylab.voice.comments import SentimentResult, detect_language, sentiment, sentiment_score
from journeylab.voice.emotion import EmotionCurveResult, emotion_curve
from journeylab.voice.scores import CSATResult, NPSResult, csat, nps, nps_interval

__all__ = [
    "THEMES",
    "nps",
    "csat",
    "sentiment",
    "sentiment_score",
    "detect_language",
    "themes",
    "emotion_curve",
    "nps_interval",
    "NPSResult",
    "CSATResult",
    "SentimentResult",
    "ThemesResult",
    "EmotionCurveResult",
]
