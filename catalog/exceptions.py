"""Domain errors. `MeepoError` is the base of every error Meepo raises on purpose."""


class MeepoError(Exception):
    """Base class for Meepo's own errors: callers catch this, not Exception."""
