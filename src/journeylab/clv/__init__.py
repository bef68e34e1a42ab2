"""Customer lifetime value: BG/NBD and Gamma-Gamma models, and CLV by acquisition channel.

Examples
--------
>>> from journeylab.clv import BetaGeo, rfm_summary  # doctest: +SKIP
>>> model = BetaGeo().fit(rfm_summary(transactions))  # doctest: +SKIP
"""

from journeylab.clv.channels import ChannelCLVResult, clv_by_channel
from journeylab.clv.models import (
    BetaGeo,
    GammaGamma,
    customer_lifetime_value,
    plot_calibration_purchases_vs_holdout_purchases,
    rfm_summary,
)

__all__ = [
    "rfm_summary",
    "BetaGeo",
    "GammaGamma",
    "customer_lifetime_value",
    "plot_calibration_purchases_vs_holdout_purchases",
    "clv_by_channel",
    "ChannelCLVResult",
]
