"""Writing and reading the append-only audit log."""

from django.db import models

from market.core.models import AuditEntry


def audit_record(**fields) -> AuditEntry:
    """Record who did what to ``target`` (the arguments of ``audit_entry``), saved now."""
    entry = audit_entry(**fields)
    entry.save(force_insert=True)
    return entry


def audit_entry(
    *,
    actor,
    action: str,
    target: models.Model,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    ip: str | None = None,
    data: dict | None = None,
) -> AuditEntry:
    """``audit_record``'s entry, not saved (the bid gateway sends its insert with the bid's rows)."""
    label = ""
    if actor is not None and getattr(actor, "is_authenticated", False):
        label = actor.get_username()
    elif actor is None:
        label = "system"
    return AuditEntry(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_label=label,
        ip=ip,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        from_state=from_state or "",
        to_state=to_state or "",
        reason=reason or "",
        data=data or {},
    )


def audit_trail(target: models.Model):
    return AuditEntry.objects.filter(
        target_type=target._meta.label_lower, target_id=str(target.pk)
    ).select_related("actor")


def client_ip(request) -> str | None:
    """The address the request came from (the proxy count is configured in settings)."""
    if request is None:
        return None
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request) or request.META.get("REMOTE_ADDR")
