"""Admin for products (variants, images, zero-shot attributes inline), images, stored image
assets and per-URL fetch state (read-only: the pipeline writes it)."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from catalog.admin.common import HTTPS_URLS, ReadOnlyInline, thumb
from catalog.models import (
    FetchState,
    ImageAsset,
    Product,
    ProductAttributes,
    ProductImage,
    ProductVariant,
    amount_text,
)


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    formfield_overrides = HTTPS_URLS
    fields = ("preview", "position", "source_url", "fetch_status", "fetch_error", "is_shared")
    readonly_fields = ("preview", "fetch_status", "fetch_error")

    @admin.display(description="")
    def preview(self, image):
        return thumb(image.asset, 64)


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
        return thumb(variant.image.asset if variant.image else None, 48)


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
        return thumb(image.asset, 48)


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
        return thumb(asset, 48)


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
