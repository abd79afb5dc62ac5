"""Crawl state and history: each scrape of a store (CrawlRun), each origin's politeness state
(Host) and what the crawler knows about each URL (FetchState).
"""

from django.db import models

from catalog.models.base import TimestampedModel
from catalog.models.stores import Store


class CrawlRun(TimestampedModel):
    """One scrape of one store: what it did and what went wrong, for the admin."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with failures"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped (off-peak window, 401/403, circuit breaker)"
        INTERRUPTED = "interrupted", "Interrupted (the process died mid-run)"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="crawl_runs")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    not_modified = models.PositiveIntegerField(default=0, help_text="304 answers")
    bytes_received = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="First failures, with reasons.")

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"{self.store} @ {self.started_at:%Y-%m-%d %H:%M}"


class Host(TimestampedModel):
    """Politeness state of one origin (scheme://host:port), shared by every command and thread.

    Written only by pipeline.http.gate while it holds the host's lock, so every request to a
    host, from any process, sees when the previous one ended and what robots.txt said.
    """

    origin = models.CharField(max_length=300, unique=True)
    robots_fetched_at = models.DateTimeField(null=True, blank=True)
    robots_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="HTTP status of robots.txt; empty = unreachable."
    )
    robots_body = models.TextField(blank=True)
    robots_delay = models.FloatField(
        default=0, help_text="Seconds between requests robots.txt asks of our bot."
    )
    last_request_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last answer from this host ended."
    )
    current_delay = models.FloatField(default=0, help_text="The gap used for the last request.")
    throttle_delay = models.FloatField(default=0, help_text="AutoThrottle's latency estimate.")
    backoff_delay = models.FloatField(default=0, help_text="Raised on 429/503, decays slowly.")
    successes_since_backoff = models.PositiveIntegerField(default=0)
    parked_until = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it is parked or slowed.")
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["origin"]

    def __str__(self) -> str:
        return self.origin


class FetchState(TimestampedModel):
    """What the crawler knows about one URL: validators for conditional requests, when to return."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="fetch_states")
    url = models.URLField(max_length=2000)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    next_visit_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    items = models.JSONField(
        default=list,
        blank=True,
        help_text="What this URL listed last time (product ids, sitemap entries), reused on 304.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "url"], name="fetch_state_unique_per_url"),
        ]

    def __str__(self) -> str:
        return self.url
