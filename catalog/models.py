"""The product catalogue: stores, products, images and per-URL crawl state.

Consistency lives in database constraints (one product per store + platform id, one stored image
per content hash, one fetch state per store + URL), so bulk pipeline writes cannot break it.
Products are never deleted by the pipeline: a product that leaves its store becomes inactive,
which keeps history and search-index ids valid.
"""

from collections.abc import Iterable
from decimal import Decimal

from django.db import models
from django.db.models import Q

from catalog.fields import OrderedJSONField


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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


class ProductQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def in_stock(self):
        return self.filter(availability=Product.Availability.IN_STOCK)


class Product(TimestampedModel):
    class Availability(models.TextChoices):
        IN_STOCK = "in_stock", "In stock"
        OUT_OF_STOCK = "out_of_stock", "Out of stock"
        PREORDER = "preorder", "Pre-order"
        UNKNOWN = "unknown", "Unknown"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="products")
    external_id = models.CharField(max_length=255, help_text="The platform's own product id.")
    url = models.URLField(max_length=2000)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, help_text="Plain text.")
    brand = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=300, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # Three decimals: KWD, BHD, JOD and OMR prices have fils (search.prices shows each currency
    # in its own minor units).
    price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217")
    availability = models.CharField(
        max_length=12, choices=Availability.choices, default=Availability.UNKNOWN
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    content_hash = models.CharField(
        max_length=64, blank=True, help_text="Hash of the scraped fields, to detect changes."
    )
    sku = models.CharField("SKU", max_length=100, blank=True, db_index=True)
    gtin = models.CharField(
        "GTIN",
        max_length=14,
        blank=True,
        db_index=True,
        help_text="Digits only: GTIN-8, EAN-13 (UPC-A as 13 digits) or GTIN-14.",
    )
    mpn = models.CharField("MPN", max_length=100, blank=True, db_index=True)
    list_price = models.DecimalField(
        max_digits=15,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The regular price, struck through while the product is on sale.",
    )
    price_max = models.DecimalField(
        max_digits=15,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The highest variant price when variants differ (price is the lowest).",
    )
    field_sources = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where each field was read: api, json-ld, microdata, opengraph, meta, visible-text.",
    )

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["store", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "external_id"], name="product_unique_per_store"
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_non_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "availability"]),
            models.Index(fields=["brand"]),
            models.Index(fields=["category"]),
            models.Index(fields=["price"]),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_on_sale(self) -> bool:
        return (
            self.list_price is not None and self.price is not None and self.list_price > self.price
        )


def amount_text(value: Decimal | None) -> str | None:
    """A stored amount as text: two decimals ("9.50"), three only when it has them (KWD 12.345).

    Content hashes and the admin use it; pages and the API write each currency in its own minor
    units (search.prices).
    """
    if value is None:
        return None
    return f"{value:.2f}" if value == round(value, 2) else f"{value:.3f}"


def combined_availability(values: Iterable[str]) -> str:
    """A product's availability from its variants': in stock when any variant is in stock.

    The one place this rule lives (the pipeline writes it, filters and cards read the result):
    else pre-order when any is, out of stock when every variant is known to be out, else unknown.
    """
    values = set(values)
    for state in (Product.Availability.IN_STOCK, Product.Availability.PREORDER):
        if state in values:
            return state
    if values == {Product.Availability.OUT_OF_STOCK}:
        return Product.Availability.OUT_OF_STOCK
    return Product.Availability.UNKNOWN


class ProductAttributes(TimestampedModel):
    """What a product's main image shows, by zero-shot classification against a taxonomy.

    Written by the `attributes` pipeline stage (`pipeline/attributes.py`) from stored image
    vectors; one row per product, kept apart from Product so re-labelling never rewrites the
    product table (or its full-text triggers). Empty values mean "no label was confident enough".
    `key` digests the model, the taxonomy and the image, so unchanged products are skipped.
    """

    product = models.OneToOneField(
        Product, primary_key=True, on_delete=models.CASCADE, related_name="attributes"
    )
    colour = models.CharField(max_length=40, blank=True, db_index=True)
    pattern = models.CharField(max_length=40, blank=True, db_index=True)
    material = models.CharField(max_length=40, blank=True, db_index=True)
    product_type = models.CharField(
        max_length=80,
        blank=True,
        db_index=True,
        help_text="Normalised type; the store's own category stays on the product.",
    )
    scores = models.JSONField(
        default=dict, blank=True, help_text="Top labels per attribute with their confidence."
    )
    model_name = models.CharField(max_length=300)
    key = models.CharField(max_length=64, help_text="Digest of model, taxonomy and image.")

    class Meta:
        verbose_name_plural = "product attributes"

    def __str__(self) -> str:
        values = [self.colour, self.pattern, self.material, self.product_type]
        return ", ".join(v for v in values if v) or "(none)"


class ImageAsset(TimestampedModel):
    """One stored image, identified by the sha256 of its downloaded bytes.

    Files are content-addressed (`thumbs/ab/cd/<sha256>.jpg`), so an image used by many products is
    stored, thumbnailed and embedded once.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10, help_text="Pillow format of the original: JPEG, PNG…")
    byte_size = models.PositiveIntegerField()
    thumbnail = models.ImageField(max_length=200, blank=True)
    placeholder = models.TextField(
        blank=True, help_text="Tiny data: URI shown before the thumbnail."
    )

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height}"


class ProductImageQuerySet(models.QuerySet):
    def indexable(self, *, model: str | None = None, **embedding_filters):
        """Images that belong in the search index: of an active product, downloaded, not shared
        (a logo or size chart on many products). With `model`: that also have a vector for it.

        The one spelling of the rule; `search.selectors.allowed_image_ids` has a raw-SQL twin
        (speed), kept in step by tests/catalog/test_indexable.py. One filter() call, so every
        condition on the embedding applies to the same (this model's) row; a second call would
        join the multi-valued relation again and match other models' rows.
        """
        conditions: dict = {"product__is_active": True, "is_shared": False, "asset__isnull": False}
        if model is not None:
            conditions["asset__embeddings__model_name"] = model
            conditions.update({f"asset__embeddings__{k}": v for k, v in embedding_filters.items()})
        elif embedding_filters:
            raise TypeError("embedding filters need a model")
        return self.filter(**conditions)


class ProductImage(TimestampedModel):
    """An image of a product, as the store lists it. Its primary key is its search-index id."""

    class FetchStatus(models.TextChoices):
        PENDING = "pending", "Not downloaded yet"
        OK = "ok", "Downloaded"
        FAILED = "failed", "Download failed"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    source_url = models.URLField(max_length=2000)
    position = models.PositiveSmallIntegerField(default=0)
    asset = models.ForeignKey(
        ImageAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="product_images"
    )
    is_shared = models.BooleanField(
        default=False, help_text="Same image on many products of the store (logo, size chart)."
    )
    fetch_status = models.CharField(
        max_length=8, choices=FetchStatus.choices, default=FetchStatus.PENDING
    )
    fetch_error = models.CharField(max_length=500, blank=True)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    objects = ProductImageQuerySet.as_manager()

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "source_url"], name="image_unique_per_product"
            ),
        ]
        indexes = [models.Index(fields=["fetch_status"])]

    def __str__(self) -> str:
        return f"{self.product_id}#{self.position}"


class ProductVariant(TimestampedModel):
    """One purchasable variant of a product (a colour, a size), as the store lists it.

    Written only with its product (catalog.services.upsert_products), in the same transaction.
    `image` is the product's own picture of this variant, when the store names one.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    external_id = models.CharField(max_length=255, help_text="The platform's variant id.")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=300, blank=True)
    # In the store's order ("Red / M"), on PostgreSQL too (see catalog.fields).
    options = OrderedJSONField(default=dict, blank=True, help_text='{"Colour": "Red"}')
    sku = models.CharField("SKU", max_length=100, blank=True, db_index=True)
    gtin = models.CharField("GTIN", max_length=14, blank=True, db_index=True)
    mpn = models.CharField("MPN", max_length=100, blank=True)
    price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    list_price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    availability = models.CharField(
        max_length=12, choices=Product.Availability.choices, default=Product.Availability.UNKNOWN
    )
    image_url = models.URLField(max_length=2000, blank=True)
    image = models.ForeignKey(
        ProductImage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="variants",
        help_text="The product's picture of this variant.",
    )
    url = models.URLField(max_length=2000, blank=True, help_text="The variant's own link.")

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "external_id"], name="variant_unique_per_product"
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="variant_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id

    @property
    def is_on_sale(self) -> bool:
        return (
            self.list_price is not None and self.price is not None and self.list_price > self.price
        )

    @property
    def label(self) -> str:
        """ "Red / M": the option values, or the title when the store gives no options."""
        return " / ".join(str(v) for v in self.options.values() if v) or self.title


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
