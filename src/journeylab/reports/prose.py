r"""Report prose: Markdown built from data values that are escaped where they land.

Every value that comes from the data (event, channel and segment names, labels,
project names) reaches report Markdown through :func:`journeylab.core.safe_text.md`,
which escapes Markdown and HTML, so that a channel called ``<img onerror=…>``,
``[x](javascript:…)`` or ``$\\alpha$`` shows as the text it is. :class:`Money` formats amounts with the
project's currency sign, escaped for Markdown.
"""

from __future__ import annotations

from collections.abc import Callable

from journeylab.core.results import fmt_money
from journeylab.core.safe_text import md

__all__ = ["md", "say", "Money"]


def say(text: str, display: Callable | None = None) -> None:
    """Show Markdown prose (already built with :func:`md` for data values) in the notebook."""
    from IPython.display import Markdown
    from IPython.display import display as show

    (display or show)(Markdown(text))


class Money:
    """Amounts in the project's currency, as Markdown-safe text."""

    def __init__(self, sign: str = "$") -> None:
        self.sign = sign

    def __call__(self, amount: float | None) -> str:
        """Format ``amount`` for Markdown (the sign escaped)."""
        return md(fmt_money(amount, self.sign))

    def plain(self, amount: float | None) -> str:
        """Format ``amount`` as plain text (figure labels, CSV)."""
        return fmt_money(amount, self.sign)
