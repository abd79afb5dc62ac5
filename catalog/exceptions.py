"""Domain errors. `MeepoError` is the base of every error Meepo raises on purpose."""


class MeepoError(Exception):
    """Base class for Meepo's own errors: callers catch this, not Exception."""


class CatalogError(MeepoError):
    """A catalogue write was refused (invalid data that a constraint or validation caught)."""
