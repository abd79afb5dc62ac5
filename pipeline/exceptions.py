"""Errors of the pipeline stages."""

from catalog.exceptions import MeepoError


class ScrapeFailed(MeepoError):
    """A store could not be crawled at all (unreachable, forbidden, platform not detected)."""


class FetchError(MeepoError):
    """One request failed in a way the crawler expects (too large, bad type, blocked, timeout)."""


class PipelineLocked(MeepoError):
    """Another pipeline run holds the lock."""
