"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from search.evaluation.views import report_page
from search.health import healthz

urlpatterns = [
    path("admin/evaluation/", admin.site.admin_view(report_page), name="evaluation_report"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("search.urls")),
]
