"""``/api/v1/``: the routes of every app's api.py."""

from django.urls import include, path

urlpatterns = [
    path("", include("market.core.api_urls")),
    path("", include("market.accounts.api_urls")),
    path("", include("listings.api_urls")),
    path("", include("market.trading.api_urls")),
    path("", include("pricing.api_urls")),
    path("", include("market.deals.api_urls")),
]
