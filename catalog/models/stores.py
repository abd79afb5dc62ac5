"""Stores: the shops Meepo crawls, and the platform each runs on."""

from django.db import models
from django.db.models import Q

from catalog.models.base import TimestampedModel


class Platform(models.TextChoices):
    UNKNOWN = "", "Not detected"
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    SCHEMA_ORG = "schema_org", "schema.org pages"


class Store(TimestampedModel):
    class OffPeakMode(models.TextChoices):
        WAIT = "wait", "Wait for the window"
        STOP = "stop", "Stop outside the window"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    base_url = models.URLField(max_length=500, unique=True)
    platform = models.CharField(max_length=20, choices=Platform.choices, blank=True)
    contact_email = models.EmailField(blank=True, help_text="Who to tell about crawl problems.")
    is_active = models.BooleanField(default=True, help_text="Inactive stores are not crawled.")
    crawl_delay = models.FloatField(
        null=True, blank=True, help_text="Minimum seconds between requests; empty = site default."
    )
    max_products = models.PositiveIntegerField(null=True, blank=True)
    offpeak_start = models.TimeField(null=True, blank=True, help_text="UTC; empty = any time.")
    offpeak_end = models.TimeField(null=True, blank=True, help_text="UTC.")
    offpeak_mode = models.CharField(
        max_length=4, choices=OffPeakMode.choices, default=OffPeakMode.WAIT
    )
    last_crawled_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The site asked us (Retry-After) not to return before this.",
    )
    allow_long_crawl_delay = models.BooleanField(
        default=False,
        help_text="When robots.txt asks for a longer Crawl-delay than MEEPO_MAX_CRAWL_DELAY, "
        "crawl at that cap anyway; unticked, such a store is skipped.",
    )
    extra_hosts = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Other host names whose pages belong to this store, comma-separated "
        "(shop.example.co.uk, *.shop.example for subdomains). Product and page URLs elsewhere "
        "are skipped; images may come from any public host.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(crawl_delay__isnull=True) | Q(crawl_delay__gte=0),
                name="store_crawl_delay_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name
