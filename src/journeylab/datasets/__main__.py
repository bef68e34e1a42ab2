"""``python -m journeylab.datasets --out DIR``: write the sample's tables."""

import sys

from journeylab.datasets.sample import main

sys.exit(main())
