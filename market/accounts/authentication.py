"""API token authentication that reads, with the token and its user, whether the user is a
government officer: every write checks that (``market_user_require``), so it costs no second query.
For a member of an organisation the same statement reads their first membership too, which every
API write acting for "my organisation" reads next (``selectors.membership_acting``)."""

from django.utils.translation import gettext_lazy as drf_message  # DRF's own messages and catalogue
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from market.accounts.models import Membership
from market.core.prepared import Prepared

_USER_READ = ("user", "user__government_officer__office__jurisdiction")  # the user, officer or not
_TOKEN = Prepared(
    lambda key: Token.objects.select_related(*_USER_READ).filter(key=key).order_by()[:1],
    key=str,
)


# The token's user through their first membership (``memberships_of`` in its order), with what
# _TOKEN reads of the user: no row for a user without a membership (operators, officers). Public: the
# bid gateway sends it in its first round trip (``market.trading.bid_pipeline``).
MEMBER_BY_TOKEN = Prepared(
    lambda key: (
        Membership.objects.select_related("organisation", "organisation__region", *_USER_READ)
        .filter(user__auth_token__key=key)
        .order_by("created_at", "pk")[:1]
    ),
    key=str,
)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        membership = MEMBER_BY_TOKEN.first(key=key)  # compiled once: every API call reads it
        if membership is not None:
            user = membership.user
            user.first_membership_read = membership  # for membership_acting, this request only
            token = Token(key=key, user=user)
        else:
            token = _TOKEN.first(key=key)
            if token is None:
                raise exceptions.AuthenticationFailed(drf_message("Invalid token."))
            user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(drf_message("User inactive or deleted."))
        return (user, token)
