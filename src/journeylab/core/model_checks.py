"""Can this fitted model be trusted? Diagnostics shared by the CLV and propensity models.

Every maximum-likelihood fit in journeylab ends with a :class:`ModelDiagnostics`:
a ``status`` and plain-language ``warnings``, emitted as a
:class:`~journeylab.core.errors.ModelWarning` on fit and printed as the first line
of the model's ``summary()``. The rules, in order of precedence:

1. **boundary** — a parameter sits at (or cannot be told from) the edge of its
   domain. For each direction a model declares (a parameter toward 0 or
   infinity, or a pair of parameters toward infinity at a fixed ratio), the
   log-parameters are moved ``BOUNDARY_STEP`` = 10 log units (a factor
   e^10 ≈ 22,000) further along it, the others held fixed. If the
   log-likelihood drops by less than ``BOUNDARY_DROP`` = 1.92 (half the 95 %
   χ²₁ quantile), the 95 % likelihood interval reaches the edge: the data
   cannot pin the parameter down. Holding the others fixed can only make the
   drop larger than the profile-likelihood drop, so the check never flags a
   parameter the profile would clear.
2. **not_converged** — the optimiser stopped with a gradient that is not
   small (and no boundary explains it).
3. **not_identified** — the observed information (minus the Hessian of the
   log-likelihood, on the log scale of the parameters) is not positive
   definite, is numerically singular (condition number above 1e8), or gives a
   parameter a log-scale standard error above 2 (a 95 % interval wider than
   a factor of e^(2·1.96·2) ≈ 2,500): standard errors are missing or meaningless.
4. **ok** otherwise.

A model then *withholds* the results that rest on a suspect parameter
(:meth:`ModelDiagnostics.withhold`): its summary says "not shown: …" with the
reason instead of printing a number nobody should use.

:class:`NotComputableResult` and :func:`computable_or_reason` cover the other
case: an analysis the data cannot support at all (no user at risk, a single
class). It becomes a result with a one-line reason, so a report prints the
reason in its section instead of failing; errors in the data or the code
still raise.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from journeylab.core.errors import ModelWarning, NotComputableError
from journeylab.core.results import Result

__all__ = [
    "Status",
    "STATUSES",
    "BOUNDARY_STEP",
    "BOUNDARY_DROP",
    "Direction",
    "ModelDiagnostics",
    "diagnose_likelihood",
    "NotComputableResult",
    "computable_or_reason",
]

Status = Literal["ok", "boundary", "not_converged", "not_identified"]
STATUSES: tuple[str, ...] = ("ok", "boundary", "not_converged", "not_identified")

#: Log units a parameter is pushed toward the edge of its domain in the boundary check.
BOUNDARY_STEP = 10.0
#: Largest log-likelihood drop that still counts as "as good as the edge" (χ²₁(0.95) / 2).
BOUNDARY_DROP = 1.92
#: Largest log-scale standard error of an identified parameter (95 % interval x/÷ ~50 each way).
MAX_LOG_SE = 2.0
#: Largest condition number of the log-scale information matrix of an identified model.
MAX_CONDITION = 1e8
#: Largest gradient (per customer, log scale) of a converged fit.
GRADIENT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Direction:
    """A way toward the edge of a model's parameter space, in log-parameter units.

    Attributes
    ----------
    label : str
        Short name, e.g. ``"a → 0"``.
    vector : tuple of float
        Direction in log-parameter space (``-1`` toward 0, ``+1`` toward infinity).
    parameters : tuple of str
        Parameters whose individual values the data cannot fix when the check
        flags this direction (empty for a ratio that stays identified).
    meaning : str
        What reaching this edge means, in the analyst's words.
    """

    label: str
    vector: tuple[float, ...]
    parameters: tuple[str, ...]
    meaning: str


def single_directions(
    names: Sequence[str], meanings: dict[str, str] | None = None
) -> list[Direction]:
    """Each parameter toward 0 and toward infinity on its own."""
    meanings = meanings or {}
    out = []
    for j, name in enumerate(names):
        for sign, edge in ((-1.0, "0"), (1.0, "∞")):
            label = f"{name} → {edge}"
            vector = tuple(sign if k == j else 0.0 for k in range(len(names)))
            out.append(Direction(label, vector, (name,), meanings.get(label, "")))
    return out


@dataclass
class ModelDiagnostics:
    """Status and plain-language warnings of one fit, and what it withholds.

    Attributes
    ----------
    status : {"ok", "boundary", "not_converged", "not_identified"}
    warnings : list of str
        One sentence per problem, most serious first.
    boundary : tuple of str
        Labels of the directions along which the likelihood is flat to the edge.
    unidentified : tuple of str
        Parameters the information matrix does not pin down.
    suspect : frozenset of str
        Parameters whose fitted value should not be used (union of the two above).
    withheld : dict
        Quantity name → the reason it is not shown.
    """

    status: Status = "ok"
    warnings: list[str] = field(default_factory=list)
    boundary: tuple[str, ...] = ()
    unidentified: tuple[str, ...] = ()
    suspect: frozenset[str] = frozenset()
    withheld: dict[str, str] = field(default_factory=dict)
    gradient: float = 0.0
    condition_number: float = float("nan")

    @property
    def ok(self) -> bool:
        """Whether nothing was flagged."""
        return self.status == "ok"

    def headline(self) -> str:
        """First line of a summary: the status and, when not ok, the main reason."""
        if self.ok:
            return "Status: ok (converged to an interior maximum; every parameter identified)."
        return f"Status: {self.status}. NOT TO BE TRUSTED AS IS: {self.warnings[0]}"

    def withhold(
        self, quantity: str, needs: Iterable[str], because: str | None = None
    ) -> str | None:
        """Withhold ``quantity`` when any parameter it ``needs`` is suspect; return the reason.

        The reason reads "not shown: " followed by ``because`` (a model's own
        words, e.g. "the dropout parameter is at its boundary …") or a generic
        sentence naming the suspect parameters.
        """
        bad = [p for p in needs if p in self.suspect]
        if not bad:
            return None
        reason = "not shown: " + (because or f"it rests on {_join(bad)}, {self._why(bad)}")
        self.withheld[quantity] = reason
        return reason

    def reason(self, quantity: str) -> str | None:
        """Return why ``quantity`` is withheld, or None when it can be shown."""
        return self.withheld.get(quantity)

    def _why(self, params: Sequence[str]) -> str:
        at_edge = [p for p in params if p not in self.unidentified]
        if at_edge:
            edges = [b for b in self.boundary if b.split(" ")[0] in at_edge]
            return f"which the data push to the edge of the parameter space ({', '.join(edges)})."
        return "which the data do not identify (no usable standard error)."

    def emit(self, model: str, stacklevel: int = 3) -> None:
        """Warn (``ModelWarning``) when the status is not ok."""
        if not self.ok:
            warnings.warn(
                f"{model}: status {self.status!r}. " + " ".join(self.warnings),
                ModelWarning,
                stacklevel=stacklevel,
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for metrics.json)."""
        return {
            "status": self.status,
            "warnings": list(self.warnings),
            "boundary": list(self.boundary),
            "unidentified": list(self.unidentified),
            "withheld": dict(self.withheld),
        }


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) == 1:
        return f"parameter {items[0]}"
    return "parameters " + ", ".join(items[:-1]) + f" and {items[-1]}"


def diagnose_likelihood(
    loglik: Callable[[np.ndarray], float],
    log_params: np.ndarray,
    names: Sequence[str],
    *,
    log_information: np.ndarray,
    gradient: float,
    directions: Sequence[Direction],
    log_bound: float = np.inf,
) -> ModelDiagnostics:
    """Classify a maximum-likelihood fit on the log scale of positive parameters.

    Parameters
    ----------
    loglik : callable
        Total log-likelihood as a function of the log-parameters.
    log_params : array
        The estimate (log scale).
    names : sequence of str
        Parameter names, in order.
    log_information : array
        Observed information (minus the Hessian of ``loglik``) at the estimate.
    gradient : float
        Largest absolute gradient of the per-customer objective at the estimate.
    directions : sequence of Direction
        Edges of the parameter space to probe (see the module docstring).
    log_bound : float
        Box bound of the optimiser on the log scale; a coordinate at it is at the edge.

    Returns
    -------
    ModelDiagnostics
    """
    theta = np.asarray(log_params, dtype=float)
    names = list(names)
    flat = _flat_directions(loglik, theta, directions, log_bound)
    singles = {p: [d for d in directions if _moved(d, names) == [p]] for p in names}
    # flat both ways: not at an edge, simply not identified; flat one way: at that edge
    both_ways = [p for p in names if singles[p] and all(flat[d.label] for d in singles[p])]
    flagged = [d for p in names if p not in both_ways for d in singles[p] if flat[d.label]]
    one_sided = {_moved(d, names)[0] for d in flagged}
    single_edges = {(j, np.sign(v)) for d in flagged for j, v in enumerate(d.vector) if v != 0}
    for d in directions:
        moved = set(_moved(d, names))
        if len(moved) < 2 or not flat[d.label]:
            continue
        if any((j, np.sign(v)) in single_edges for j, v in enumerate(d.vector) if v != 0):
            continue  # a flagged single edge is part of this one: it explains the flatness
        # an edge reached by several parameters together (e.g. a → 0 with b → ∞) unless
        # single edges explain it; a ratio held fixed (no parameters of its own) only when
        # nothing else is flagged among its parameters
        if d.parameters or not (moved & (one_sided | set(both_ways))):
            flagged.append(d)

    # a flagged ratio direction (a, b → ∞ with a/b fixed) leaves the ratio identified:
    # judge the information on the other directions only
    ratios = [np.asarray(d.vector, float) for d in flagged if not d.parameters]
    unidentified, identified_text, condition = _information_check(log_information, names, ratios)
    if both_ways:
        unidentified = [p for p in names if p in set(both_ways) | set(unidentified)]
        identified_text = (
            "the likelihood is flat in "
            + ("it" if len(both_ways) == 1 else "them")
            + f": multiplying or dividing by e^{BOUNDARY_STEP:g} changes it by less than {BOUNDARY_DROP}"
        )

    warnings_: list[str] = []
    for d in flagged:
        text = f"{d.label}: the fit is as good with {_moved_text(d, names)} pushed to the edge of the domain"
        warnings_.append(text + (f" ({d.meaning})" if d.meaning else "") + ".")
    not_converged = gradient > GRADIENT_TOLERANCE and not flagged
    if not_converged:
        warnings_.append(
            f"the optimiser stopped before reaching a maximum (largest gradient {gradient:.2g} per "
            "customer): the estimates are not the maximum-likelihood estimates."
        )
    if unidentified:
        warnings_.append(
            f"{_join(unidentified)} {'is' if len(unidentified) == 1 else 'are'} not identified by the data: "
            f"{identified_text}; standard errors and intervals are not reliable."
        )
    if flagged:
        status: Status = "boundary"
    elif not_converged:
        status = "not_converged"
    elif unidentified:
        status = "not_identified"
    else:
        status = "ok"
    return ModelDiagnostics(
        status=status,
        warnings=warnings_,
        boundary=tuple(d.label for d in flagged),
        unidentified=tuple(unidentified),
        suspect=frozenset({p for d in flagged for p in d.parameters} | set(unidentified)),
        gradient=float(gradient),
        condition_number=condition,
    )


def _flat_directions(loglik, theta, directions, log_bound) -> dict[str, bool]:
    """Tell, per direction, whether the log-likelihood stays within BOUNDARY_DROP of the maximum."""
    best = float(loglik(theta))
    flat = {}
    with np.errstate(all="ignore"):
        for d in directions:
            vector = np.asarray(d.vector, dtype=float)
            # the full step, or as far as the optimiser's box allows (keeping a ratio fixed)
            room = np.where(
                vector > 0, log_bound - theta, np.where(vector < 0, theta + log_bound, np.inf)
            )
            step = min(
                BOUNDARY_STEP, float(np.min(room / np.abs(np.where(vector != 0, vector, 1.0))))
            )
            if step < 1e-3:
                flat[d.label] = True  # already at the optimiser's box bound this way
                continue
            value = float(loglik(theta + step * vector))
            flat[d.label] = bool(np.isfinite(value) and best - value < BOUNDARY_DROP)
    return flat


def _information_check(information, names, ratios=()) -> tuple[list[str], str | None, float]:
    """Parameters the observed information does not pin down, why, and its condition number.

    ``ratios`` are directions to leave out (their ratio is identified, the
    parameters along them individually are not, and that is reported as a boundary).
    """
    info = np.asarray(information, dtype=float)
    if not np.all(np.isfinite(info)):
        return list(names), "the information matrix could not be computed", float("nan")
    basis = np.eye(len(names))
    if len(ratios):
        # orthonormal basis of the complement of the ratio directions
        u, sv, _ = np.linalg.svd(np.column_stack(ratios), full_matrices=True)
        basis = u[:, int(np.sum(sv > 1e-12)) :]
    info = basis.T @ info @ basis
    eig, vec = np.linalg.eigh((info + info.T) / 2)
    vec = basis @ vec  # back to the parameters
    top = float(np.max(np.abs(eig)))
    condition = float(top / eig[0]) if eig[0] > 0 else float("inf")
    if condition > MAX_CONDITION:
        weak = np.abs(vec[:, eig <= top / MAX_CONDITION]).max(axis=1)
        shown = "∞" if not np.isfinite(condition) else f"{condition:.2g}"
        return (
            [n for n, w in zip(names, weak, strict=True) if w > 0.1],
            f"the information matrix is singular or nearly so (condition number {shown})",
            condition,
        )
    log_se = np.sqrt(np.diag(basis @ np.linalg.inv(info) @ basis.T))
    wide = [(n, se) for n, se in zip(names, log_se, strict=True) if not se <= MAX_LOG_SE]
    if not wide:
        return [], None, condition
    return (
        [n for n, _ in wide],
        "their 95% intervals span more than a factor of 2,500 (log-scale standard errors "
        + ", ".join(f"{n} {se:.2g}" for n, se in wide)
        + ")",
        condition,
    )


def _moved(d: Direction, names: Sequence[str]) -> list[str]:
    return [n for n, v in zip(names, d.vector, strict=True) if v != 0]


def _moved_text(d: Direction, names: Sequence[str]) -> str:
    moved = _moved(d, names)
    if len(moved) == 1:
        return moved[0]
    signs = {np.sign(v) for v in d.vector if v != 0}
    return " and ".join(moved) + (
        " together (their ratio fixed)" if len(signs) == 1 else " together"
    )


# --------------------------------------------------------------------------- not computable
@dataclass(repr=False)
class NotComputableResult(Result):
    """An analysis the data cannot support, with the one-line reason.

    It renders like any result, so a report section prints the reason instead
    of failing. ``status`` is ``"not_computable"``.
    """

    reason: str
    title: str = "Not computable"
    status: str = "not_computable"

    @property
    def warnings(self) -> list[str]:
        """The reason, as the single warning."""
        return [self.reason]

    def to_frame(self) -> pd.DataFrame:
        """Return an empty table with the reason in ``attrs``."""
        frame = pd.DataFrame()
        frame.attrs["reason"] = self.reason
        return frame

    def summary(self) -> str:
        """Return the one-line reason."""
        return f"Not computable: {self.reason}"

    def _repr_html_(self) -> str:
        return (
            f"<div class='journeylab-result'><h4>{html.escape(self.title)}</h4>"
            f"<p><strong>Not computable:</strong> {html.escape(self.reason)}</p></div>"
        )

    def plot(self, ax=None):
        """Draw the reason in place of a chart."""
        from journeylab.core.viz import new_axes

        ax = new_axes(ax, figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0, 0.5, f"Not computable: {self.reason}", va="center", wrap=True)
        return ax


T = TypeVar("T")


def computable_or_reason(
    analysis: Callable[..., T], *args: Any, title: str = "Not computable", **kwargs: Any
) -> T | NotComputableResult:
    """Run ``analysis(*args, **kwargs)``; if the data cannot support it, return the reason instead.

    Only :class:`~journeylab.core.errors.NotComputableError` (no user at risk, a
    single outcome class, too few events …) becomes a
    :class:`NotComputableResult`; every other error (bad data, bad parameters,
    bugs) propagates.

    Examples
    --------
    >>> from journeylab.core.errors import NotComputableError
    >>> def impossible():
    ...     raise NotComputableError("every training row has converted = 0; nothing to learn.")
    >>> computable_or_reason(impossible, title="Propensity").summary()
    'Not computable: every training row has converted = 0; nothing to learn.'
    """
    try:
        return analysis(*args, **kwargs)
    except NotComputableError as exc:
        return NotComputableResult(reason=str(exc), title=title)
