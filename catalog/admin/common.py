"""What the catalogue's admin pages share: read-only inlines, https URL fields, error lists
and thumbnails."""

from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def errors_html(errors):
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


def thumb(asset, size):
    if asset is None or not asset.thumbnail:
        return "—"
    return format_html(
        '<img src="{}" width="{}" style="object-fit:contain" alt="">', asset.thumbnail.url, size
    )
