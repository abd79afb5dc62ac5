"""Stored CLIP vectors: one per image content hash and model, so an index rebuild never runs CLIP.

The vector is float32, L2-normalised, stored as raw little-endian bytes (2 KB for 512-d).
"""

import numpy as np
from django.db import models
from numpy.typing import NDArray

from catalog.models import ImageAsset, TimestampedModel


class Embedding(TimestampedModel):
    # The one codec of `vector`: little-endian float32 whatever the machine, so a database
    # copied between hosts still decodes.
    VECTOR_DTYPE = np.dtype("<f4")

    asset = models.ForeignKey(ImageAsset, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=300)
    dim = models.PositiveSmallIntegerField()
    vector = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "model_name"], name="embedding_unique_per_model"
            ),
        ]
        indexes = [models.Index(fields=["model_name", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.asset_id} @ {self.model_name}"

    @classmethod
    def pack(cls, vector: NDArray[np.floating]) -> bytes:
        """The stored bytes of one vector."""
        return np.ascontiguousarray(vector, dtype=cls.VECTOR_DTYPE).tobytes()

    @classmethod
    def unpack(cls, blob: bytes | memoryview, dim: int | None = None) -> NDArray[np.float32]:
        """One stored vector as a read-only float32 array (of `dim` values when given; raises
        ValueError when the blob holds fewer)."""
        return np.frombuffer(bytes(blob), dtype=cls.VECTOR_DTYPE, count=-1 if dim is None else dim)

    def as_array(self) -> NDArray[np.float32]:
        return self.unpack(self.vector, self.dim)


class EmbeddingFailure(TimestampedModel):
    """An image that could not be embedded for a model; retried on a later run."""

    asset = models.ForeignKey(
        ImageAsset, on_delete=models.CASCADE, related_name="embedding_failures"
    )
    model_name = models.CharField(max_length=300)
    error = models.CharField(max_length=500)
    attempts = models.PositiveSmallIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "model_name"], name="embedding_failure_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} @ {self.model_name}: {self.error}"
