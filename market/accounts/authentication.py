"""API token authentication that reads, with the token and its user, whether the user is a
government officer: every write checks that (``market_user_require``), so it costs no second query."""

from django.utils.translation import gettext_lazy as drf_message  # DRF's own messages and catalogue
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        model = self.get_model()
        token = (
            model.objects.select_related("user", "user__government_officer__office__jurisdiction")
            .filter(key=key)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(drf_message("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(drf_message("User inactive or deleted."))
        return (token.user, token)
