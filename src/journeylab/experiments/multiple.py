"""Multiple-testing adjustment across variants × metrics.

Holm's step-down procedure (family-wise error) is the default; Benjamini–
Hochberg (false discovery rate) on request; ``None`` leaves p-values as they
are. Delegates to :func:`statsmodels.stats.multitest.multipletests`, which
agrees with R ``p.adjust``. p-values that are not computable (NaN) are left
out of the family and stay NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

from journeylab.core.errors import check_in

__all__ = ["adjust_p_values", "CORRECTION_NAMES"]

Correction = Literal["holm", "fdr_bh", "bonferroni"] | None

#: Plain names of the corrections, used in summaries.
CORRECTION_NAMES = {
    "holm": "Holm",
    "fdr_bh": "Benjamini-Hochberg (FDR)",
    "bonferroni": "Bonferroni",
    None: "unadjusted",
}


def adjust_p_values(p_values, correction: Correction = "holm") -> np.ndarray:
    """Adjust a family of p-values (NaN entries are skipped and kept NaN).

    Parameters
    ----------
    p_values : array-like of float
        One p-value per hypothesis (variant × metric).
    correction : "holm", "fdr_bh", "bonferroni" or None
        The procedure; None returns the p-values unchanged.

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, float("nan")], "holm").round(3).tolist()
    [0.02, 0.04, nan]
    """
    check_in("correction", correction, list(CORRECTION_NAMES))
    p = np.asarray(p_values, dtype=float)
    out = p.copy()
    ok = ~np.isnan(p)
    if correction is None or not ok.any():
        return out
    out[ok] = multipletests(p[ok], method=correction)[1]
    return out
