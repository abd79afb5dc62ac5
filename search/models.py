"""Stored CLIP vectors: one per image content hash and model, so an index rebuild never runs CLIP.

The vector is float32, L2-normalised, stored as raw little-endian bytes (2 KB for 512-d).
"""

from django.db import models

from catalog.models import ImageAsset, TimestampedModel


class Embedding(TimestampedModel):
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
