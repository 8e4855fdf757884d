"""Logging set-up shared by every nearby process (web, worker, loader)."""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str = "INFO") -> None:
    """Send every logger's records at ``level`` and above to standard error."""
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)
