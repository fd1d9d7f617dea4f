def acting_organisation(request):
    membership = getattr(request, "acting_membership", None)
    # SimpleLazyObject wrapping None is truthy; unwrap to a real None for templates.
    if membership is not None and not getattr(membership, "pk", None):
        membership = None
    return {"acting_membership": membership}
