"""Errors of the search side (encoder, index, queries)."""

from catalog.exceptions import MeepoError


class ModelNotAvailable(MeepoError):
    """The CLIP model named by MEEPO_CLIP_MODEL cannot be loaded; the message says what to do."""


class UnsupportedImage(MeepoError):
    """An image that is not a supported, sane picture (wrong type, too large, bomb, truncated)."""


class IndexNotReady(MeepoError):
    """No usable index is published (none built yet, or built for another model)."""
