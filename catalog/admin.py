"""Django admin for the catalogue: stores with their crawl history and errors, products,
images (with thumbnails), stored image assets and per-URL fetch state.

Crawl runs and fetch states are written by the pipeline only, so they are read-only here.
"""

from django.contrib import admin
from django.db import models
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils.html import format_html, format_html_join

from catalog import selectors
from catalog.models import (
    CrawlRun,
    FetchState,
    Host,
    ImageAsset,
    Product,
    ProductAttributes,
    ProductImage,
    ProductVariant,
    Store,
    amount_text,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CrawlRunInline(ReadOnlyInline):
    model = CrawlRun
    fields = (
        "started_at",
        "status",
        "created",
        "updated",
        "unchanged",
        "failed",
        "deactivated",
        "requests",
        "not_modified",
        "first_error",
    )
    readonly_fields = fields
    ordering = ("-started_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-started_at")

    @admin.display(description="First error")
    def first_error(self, run):
        return run.errors[0]["reason"][:120] if run.errors else ""


def _errors_html(errors):
    if not errors:
        return "—"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><code>{}</code>: {}</li>",
            ((e.get("url", ""), e.get("reason", "")) for e in errors),
        ),
    )


# A URL typed without a scheme is https (Django 6's default, chosen explicitly now).
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = (
        "name",
        "slug",
        "platform",
        "is_active",
        "crawl_delay",
        "product_count",
        "last_crawled_at",
        "last_status",
    )
    list_filter = ("platform", "is_active", "offpeak_mode")
    search_fields = ("name", "slug", "base_url")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("last_crawled_at", "created_at", "updated_at", "last_errors", "host_state")
    inlines = [CrawlRunInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "slug",
                    "base_url",
                    "extra_hosts",
                    "platform",
                    "is_active",
                    "contact_email",
                )
            },
        ),
        (
            "Crawling",
            {
                "fields": (
                    "crawl_delay",
                    "allow_long_crawl_delay",
                    "max_products",
                    "offpeak_start",
                    "offpeak_end",
                    "offpeak_mode",
                    "paused_until",
                    "last_crawled_at",
                    "last_errors",
                    "host_state",
                )
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _products=Count("products", filter=Q(products__is_active=True)),
                # In the same query as the list: no query per store row.
                _last_status=Subquery(
                    CrawlRun.objects.filter(store=OuterRef("pk"))
                    .order_by("-started_at")
                    .values("status")[:1]
                ),
            )
        )

    @admin.display(description="Active products", ordering="_products")
    def product_count(self, store):
        return store._products

    @admin.display(description="Last crawl")
    def last_status(self, store):
        status = store._last_status
        return CrawlRun.Status(status).label if status else "never"

    @admin.display(description="Errors of the last crawl")
    def last_errors(self, store):
        run = selectors.latest_crawl_run(store=store)
        return _errors_html(run.errors if run else [])

    @admin.display(description="Host (shared politeness state)")
    def host_state(self, store):
        host = Host.objects.filter(origin=store.base_url.rstrip("/").lower()).first()
        return _host_html(host) if host else "not contacted yet"


def _host_html(host):
    robots = "never fetched"
    if host.robots_fetched_at:
        status = host.robots_status or "unreachable"
        robots = f"{status} at {host.robots_fetched_at:%Y-%m-%d %H:%M} UTC"
    return format_html(
        "<ul><li>delay used: {}s (robots.txt asks {}s, AutoThrottle {}s, back-off "
        "{}s)</li><li>last request: {}</li><li>parked until: {}</li>"
        "<li>consecutive failures: {}</li><li>why: {}</li><li>robots.txt: {}</li></ul>"
        "<pre>{}</pre>",
        f"{host.current_delay:.2f}",
        f"{host.robots_delay:g}",
        f"{host.throttle_delay:.2f}",
        f"{host.backoff_delay:.2f}",
        host.last_request_at or "never",
        host.parked_until or "—",
        host.consecutive_failures,
        host.reason or "—",
        robots,
        host.robots_body[:4000],
    )


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    """Written by the crawler's gate only (pipeline.http.gate): read-only here."""

    list_display = (
        "origin",
        "current_delay",
        "robots_delay",
        "robots_status",
        "robots_fetched_at",
        "last_request_at",
        "parked_until",
        "consecutive_failures",
        "reason",
    )
    search_fields = ("origin",)
    readonly_fields = [f.name for f in Host._meta.fields if f.name != "robots_body"] + ["state"]
    exclude = ("robots_body",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="State")
    def state(self, host):
        return _host_html(host)


@admin.register(CrawlRun)
class CrawlRunAdmin(admin.ModelAdmin):
    list_display = (
        "store",
        "started_at",
        "finished_at",
        "status",
        "created",
        "updated",
        "unchanged",
        "failed",
        "deactivated",
        "requests",
        "not_modified",
    )
    list_filter = ("status", "store")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in CrawlRun._meta.fields if f.name != "errors"] + ["error_list"]
    exclude = ("errors",)
    list_select_related = ("store",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Errors")
    def error_list(self, run):
        return _errors_html(run.errors)


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    formfield_overrides = HTTPS_URLS
    fields = ("preview", "position", "source_url", "fetch_status", "fetch_error", "is_shared")
    readonly_fields = ("preview", "fetch_status", "fetch_error")

    @admin.display(description="")
    def preview(self, image):
        return _thumb(image.asset, 64)


class ProductVariantInline(ReadOnlyInline):
    """Variants come from the store with their product (the pipeline writes them)."""

    model = ProductVariant
    show_change_link = False
    formfield_overrides = HTTPS_URLS
    fields = (
        "preview",
        "external_id",
        "title",
        "options",
        "sku",
        "gtin",
        "mpn",
        "price",
        "list_price",
        "availability",
        "url",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("image__asset")

    @admin.display(description="")
    def preview(self, variant):
        return _thumb(variant.image.asset if variant.image else None, 48)


def _thumb(asset, size):
    if asset is None or not asset.thumbnail:
        return "—"
    return format_html(
        '<img src="{}" width="{}" style="object-fit:contain" alt="">', asset.thumbnail.url, size
    )


class ProductAttributesInline(admin.StackedInline):
    """Zero-shot labels from the product's main image (pipeline stage `attributes`): read-only,
    the next run would overwrite an edit."""

    model = ProductAttributes
    can_delete = False
    fields = readonly_fields = (
        "colour",
        "pattern",
        "material",
        "product_type",
        "scores",
        "model_name",
        "updated_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = (
        "title",
        "store",
        "brand",
        "category",
        "price_shown",
        "currency",
        "availability",
        "gtin",
        "is_active",
        "last_seen_at",
    )
    list_filter = ("is_active", "availability", "store", "currency", "category")
    search_fields = (
        "title",
        "brand",
        "category",
        "external_id",
        "url",
        "=sku",
        "=gtin",
        "=mpn",
        "=variants__sku",
        "=variants__gtin",
    )
    list_select_related = ("store",)
    readonly_fields = (
        "first_seen_at",
        "last_seen_at",
        "content_hash",
        "created_at",
        "updated_at",
        "sources",
    )
    inlines = [ProductVariantInline, ProductImageInline, ProductAttributesInline]
    list_per_page = 50

    @admin.display(description="Price", ordering="price")
    def price_shown(self, product):
        return amount_text(product.price) or "—"

    @admin.display(description="Where each field was read (why the price is what it is)")
    def sources(self, product):
        if not product.field_sources:
            return "—"
        values = {
            "price": amount_text(product.price),
            "price_max": amount_text(product.price_max),
            "list_price": amount_text(product.list_price),
            "currency": product.currency,
            "availability": product.get_availability_display(),
            "title": product.title,
            "brand": product.brand,
            "sku": product.sku,
            "gtin": product.gtin,
            "mpn": product.mpn,
        }
        return format_html(
            "<table><tr><th>Field</th><th>Value</th><th>Read from</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                (
                    (name, values.get(name, ""), source)
                    for name, source in sorted(product.field_sources.items())
                ),
            ),
        )


@admin.register(ProductImage)
class ProductImageAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = (
        "preview",
        "product",
        "position",
        "fetch_status",
        "is_shared",
        "fetch_attempts",
        "last_fetched_at",
    )
    list_filter = ("fetch_status", "is_shared", "product__store")
    search_fields = ("source_url", "product__title", "fetch_error")
    list_select_related = ("product", "asset")
    raw_id_fields = ("product", "asset")
    readonly_fields = ("fetch_attempts", "last_fetched_at", "fetch_error")

    @admin.display(description="")
    def preview(self, image):
        return _thumb(image.asset, 48)


@admin.register(ImageAsset)
class ImageAssetAdmin(admin.ModelAdmin):
    list_display = ("preview", "sha256", "width", "height", "format", "byte_size", "uses")
    list_filter = ("format",)
    search_fields = ("sha256",)
    readonly_fields = [f.name for f in ImageAsset._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_uses=Count("product_images"))

    @admin.display(description="Used by", ordering="_uses")
    def uses(self, asset):
        return asset._uses

    @admin.display(description="")
    def preview(self, asset):
        return _thumb(asset, 48)


@admin.register(FetchState)
class FetchStateAdmin(admin.ModelAdmin):
    list_display = ("url", "store", "status_code", "fetched_at", "etag", "failures", "error")
    list_filter = ("store", "status_code")
    search_fields = ("url", "error")
    list_select_related = ("store",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in FetchState._meta.fields]

    def has_add_permission(self, request):
        return False
