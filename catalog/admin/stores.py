"""Admin for stores, their hosts' shared politeness state and crawl runs (read-only: the
pipeline writes them)."""

from django.contrib import admin
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils.html import format_html

from catalog import selectors
from catalog.admin.common import HTTPS_URLS, ReadOnlyInline, errors_html
from catalog.models import (
    CrawlRun,
    Host,
    Store,
)

# What a crawl run counted, in the order the admin shows it (the inline and the run list).
RUN_COUNTS = (
    "created",
    "updated",
    "unchanged",
    "failed",
    "deactivated",
    "requests",
    "not_modified",
)


class CrawlRunInline(ReadOnlyInline):
    model = CrawlRun
    fields = ("started_at", "status", *RUN_COUNTS, "first_error")
    readonly_fields = fields
    ordering = ("-started_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-started_at")

    @admin.display(description="First error")
    def first_error(self, run):
        return run.errors[0]["reason"][:120] if run.errors else ""


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
        return errors_html(run.errors if run else [])

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
    list_display = ("store", "started_at", "finished_at", "status", *RUN_COUNTS)
    list_filter = ("status", "store")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in CrawlRun._meta.fields if f.name != "errors"] + ["error_list"]
    exclude = ("errors",)
    list_select_related = ("store",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Errors")
    def error_list(self, run):
        return errors_html(run.errors)
