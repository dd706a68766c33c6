from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health
from config.metrics import views as metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("payments.api.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from this URL (?script) instead of inline, and
    # the template moves the inline style to a file: the page runs under a CSP with no 'unsafe-inline'.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="payments/swagger_ui.html"),
        name="api-docs",
    ),
]

handler404 = "payments.api.exception_handler.not_found"
handler500 = "payments.api.exception_handler.server_error"
