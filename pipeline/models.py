"""The pipeline's own record: Celery tasks of distributed mode that failed for good.

Written by `pipeline.distributed.tasks` when a task gives up (after its retries), read by
`manage.py pipeline_status` and the admin. A row per final failure; retries are not recorded
(they are expected, and the worker log has them). Lives in the pipeline app, beside the code that
writes it, so distributed mode adds no column to the catalogue.
"""

from django.db import models

from catalog.models import TimestampedModel


class TaskFailure(TimestampedModel):
    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, unique=True)
    arguments = models.TextField(blank=True)
    error = models.TextField()
    worker = models.CharField(max_length=200, blank=True)
    retries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}: {self.error[:80]}"
