from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from market.deals.webhooks import stripe_webhook

handler500 = "market.core.errors.server_error"

admin.site.site_header = gettext_lazy("再生资源交易市场 · 运营后台")
admin.site.site_title = gettext_lazy("运营后台")

urlpatterns = [
    path("api/v1/", include("market.api_urls")),  # first: the busiest routes
    path("admin/", admin.site.urls),
    path("payments/stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("frontend.urls")),
]
