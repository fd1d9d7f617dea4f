"""``/api/v1/``: the routes of every app's api.py."""

from django.urls import include, path

# Trading first: its bids are the busiest requests, and the resolver tries the routes in order
# (no two apps' routes match one path: tests/test_urls.py).
urlpatterns = [
    path("", include("market.trading.api_urls")),
    path("", include("market.core.api_urls")),
    path("", include("market.accounts.api_urls")),
    path("", include("listings.api_urls")),
    path("", include("pricing.api_urls")),
    path("", include("market.deals.api_urls")),
]
