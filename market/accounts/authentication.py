"""API token authentication that reads, with the token and its user, whether the user is a
government officer: every write checks that (``market_user_require``), so it costs no second query."""

from django.utils.translation import gettext_lazy as drf_message  # DRF's own messages and catalogue
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from market.core.prepared import Prepared

_TOKEN = Prepared(
    lambda key: (
        Token.objects.select_related("user", "user__government_officer__office__jurisdiction")
        .filter(key=key)
        .order_by()[:1]
    ),
    key=str,
)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        token = _TOKEN.first(key=key)  # compiled once: every API call reads it
        if token is None:
            raise exceptions.AuthenticationFailed(drf_message("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(drf_message("User inactive or deleted."))
        return (token.user, token)
