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

# Under /api/ every error is JSON; elsewhere Django's pages (templates/404.html, 500.html).
handler400 = "search.views.error_400"
handler403 = "search.views.error_403"
handler404 = "search.views.error_404"
handler500 = "search.views.error_500"
