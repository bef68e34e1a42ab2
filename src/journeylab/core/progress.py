"""Progress bars for long computations, off in scheduled runs.

Functions with a ``progress=`` argument accept ``None`` (the default: a
``tqdm.auto`` bar in interactive sessions, none under the report runner or
when ``TQDM_DISABLE`` is set), ``False`` (no bar) or any tqdm-like factory
(called as ``factory(iterable, total=..., desc=...)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["ProgressLike", "track", "bars_enabled"]

T = TypeVar("T")
ProgressLike = Callable[..., Iterable[Any]] | bool | None


def bars_enabled() -> bool:
    """Return False under the report runner or with ``TQDM_DISABLE`` set."""
    if os.environ.get("JOURNEYLAB_UNDER_RUNNER"):
        return False
    return os.environ.get("TQDM_DISABLE", "").lower() not in {"1", "true", "yes"}


def track(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    progress: ProgressLike = None,
) -> Iterator[T]:
    """Iterate, showing a progress bar as ``progress`` says.

    Examples
    --------
    >>> sum(track(range(3), progress=False))
    3
    """
    if progress is False or (progress is None and not bars_enabled()):
        return iter(iterable)
    if progress is None or progress is True:
        from tqdm.auto import tqdm

        return iter(tqdm(iterable, total=total, desc=desc, leave=False))
    return iter(progress(iterable, total=total, desc=desc))
