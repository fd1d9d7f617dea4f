"""Which organisation the signed-in user is acting for on pages (kept in the session)."""

from django.utils.functional import SimpleLazyObject

SESSION_KEY = "acting_organisation_id"


def _acting_membership(request):
    from market.accounts.selectors import membership_acting

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return membership_acting(user=user, organisation_id=request.session.get(SESSION_KEY))


class ActingOrganisationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.acting_membership = SimpleLazyObject(lambda: _acting_membership(request))
        return self.get_response(request)
