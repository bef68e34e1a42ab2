"""From insight to action: audiences of the people a campaign moves."""

from journeylab.actions.audiences import build

__all__ = ["build"]
