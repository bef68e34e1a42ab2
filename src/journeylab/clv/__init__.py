"""Customer lifetime value: purchase models (BG/NBD, MBG/NBD, Pareto/NBD), Gamma-Gamma, CLV by channel.

Every fitted model carries a ``status`` and ``warnings``
(:mod:`journeylab.core.model_checks`); :func:`calibration_and_holdout` and
:func:`compare_on_holdout` check the models on months they have not seen.

Examples
--------
>>> from journeylab.clv import BetaGeo, rfm_summary
>>> from journeylab.datasets.sample import make_sample
>>> model = BetaGeo().fit(rfm_summary(make_sample(seed=1, n_users=2000).transactions))
>>> model.status
'ok'
"""

from journeylab.clv.alternatives import ModifiedBetaGeo, ParetoNBD
from journeylab.clv.channels import ChannelCLVResult, clv_by_channel
from journeylab.clv.holdout import (
    HoldoutComparison,
    calibration_and_holdout,
    compare_on_holdout,
    plot_calibration_purchases_vs_holdout_purchases,
)
from journeylab.clv.models import BetaGeo, GammaGamma, customer_lifetime_value
from journeylab.clv.rfm import rfm_summary

__all__ = [
    "rfm_summary",
    "BetaGeo",
    "GammaGamma",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "customer_lifetime_value",
    "calibration_and_holdout",
    "compare_on_holdout",
    "HoldoutComparison",
    "plot_calibration_purchases_vs_holdout_purchases",
    "clv_by_channel",
    "ChannelCLVResult",
]
