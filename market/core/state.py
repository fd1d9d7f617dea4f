"""Explicit state machines: one table of allowed moves per machine, one transition function.

A move is checked against the table, saved with ``update_fields`` and recorded as an
:class:`~market.core.models.AuditEntry` in the same transaction.
"""

from collections.abc import Iterable, Mapping

from django.db import models, transaction
from django.utils.translation import gettext as _

from market.core.audit import audit_record


class TransitionNotAllowed(Exception):
    code = "transition_not_allowed"

    def __init__(self, message: str, *, from_state: str, to_state: str):
        super().__init__(message)
        self.message = message
        self.from_state = from_state
        self.to_state = to_state


def transition(
    obj: models.Model,
    *,
    field: str,
    to: str,
    table: Mapping[str, Iterable[str]],
    actor=None,
    action: str,
    reason: str = "",
    ip: str | None = None,
    extra_fields: Iterable[str] = (),
    data: dict | None = None,
):
    """Move ``obj.<field>`` to ``to`` if the table allows it; save and audit atomically."""
    current = getattr(obj, field)
    if to not in set(table.get(current, ())):
        raise TransitionNotAllowed(
            _("不能从“%(from)s”变为“%(to)s”。")
            % {"from": _label(obj, field, current), "to": _label(obj, field, to)},
            from_state=current,
            to_state=to,
        )
    with transaction.atomic():
        setattr(obj, field, to)
        obj.save(update_fields=[field, *extra_fields])
        audit_record(
            actor=actor,
            action=action,
            target=obj,
            from_state=current,
            to_state=to,
            reason=reason,
            ip=ip,
            data=data,
        )
    return obj


def _label(obj, field, value) -> str:
    choices = dict(obj._meta.get_field(field).flatchoices)
    return str(choices.get(value, value))
