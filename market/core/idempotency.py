"""``Idempotency-Key``: a retried POST gets the first answer and creates nothing new.

The key's row is inserted at the end of the work's own transaction, with the answer, under a unique
constraint on (user, key): one statement, no savepoint. A retry that arrives while the first request
is still running does its work behind the same locks, then fails on that index once the first
commits, which rolls its work back, and replays the first answer. Answers that are refusals (4xx)
are kept too (in one statement of their own, the work having been rolled back; or in the work's
transaction, committed, when the refusal says ``nothing_written``), so a retry is told the same
thing; a 5xx is not kept, so the request may be tried again.

A work whose every effect is in its transaction (or after its commit) may skip the lookup before it
(the bid view): a retry then runs the read-only checks again, and its answer is the first one's all
the same, from the unique constraint. The bid view still looks the key up once its checks pass for a
bidder who leads, whose retry would otherwise queue for the sale's lock only to be rolled back.

The bid view also keeps the refusals decided outside any transaction without waiting for the disk
(``refusals_async``, PostgreSQL: ``synchronous_commit`` off for that one statement, sent with it). A
database crash, or a failover to a standby, can lose the last ones kept; a retry of a lost one is
answered afresh, its request having written nothing. A twin that was told such a refusal (its own
work rolled back by the kept key) may then see its retry accepted: a bid is never lost or doubled,
but that key's answer changes once, after a crash.
"""

import hashlib
import json
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from market.core.commit import execute_many_async
from market.core.drf import DomainError, exception_handler
from market.core.models import IdempotencyKey
from market.core.prepared import Prepared
from market.core.statements import Statement, execute_many

_KEY = Prepared(
    lambda user, key: IdempotencyKey.objects.filter(user_id=user, key=key).order_by("pk")[:1],
    user=int,
    key=str,
)
HEADER = "Idempotency-Key"
MAX_KEY = 255


def _request_hash(request) -> str:
    return request_hash(request.method, request.path, request.data)


def request_hash(method: str, path: str, data) -> str:
    """What tells a retry from another request sent with the same key: the method, the path and the
    parsed body."""
    try:
        body = json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        body = repr(data)
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyKey, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise DomainError(
            _("这个 Idempotency-Key 已用于另一个请求，请为新请求生成新的键。"),
            code="idempotency_key_reused",
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = Response(record.response, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _key_of(request) -> str:
    """The request's key, or "" when it has none (or its user is anonymous): then no key is kept."""
    key = (request.headers.get(HEADER) or "").strip()
    return key if key and request.user.is_authenticated else ""


def in_transaction(request) -> bool:
    """Whether ``idempotent`` runs this request's work inside a transaction of its own, rolled back
    whenever the work raises (a work may then skip savepoints of its own)."""
    return bool(_key_of(request))


def idempotent(request, work, *, context=None, before=None, lookup=True, refusals_async=False) -> Response:
    """Run ``work()`` (which returns a DRF Response or raises) at most once per key and user.
    ``before()``: checks that only read, run first and outside the work's transaction; what they
    raise is answered (and kept) as if the work had raised it. ``lookup``: True reads the key first;
    False does not, for a work with no effect outside its transaction; a function decides after
    ``before()`` passes (see the module's docstring). ``refusals_async``: a refusal kept alone is
    committed without waiting for the disk (PostgreSQL)."""
    key = _key_of(request)
    if not key:
        if before is not None:
            before()
        return work()
    if len(key) > MAX_KEY:
        raise DomainError(
            _("Idempotency-Key 不能超过 %(n)s 个字符。") % {"n": MAX_KEY}, code="idempotency_key_invalid"
        )
    request_hash = _request_hash(request)
    if lookup is True and (replayed := _replayed(request, key, request_hash)) is not None:
        return replayed
    try:
        if before is not None:
            before()  # outside the transaction: a refusal here has nothing to roll back
        if callable(lookup) and lookup() and (replayed := _replayed(request, key, request_hash)) is not None:
            return replayed
        with transaction.atomic():
            try:
                response = work()
            except Exception as exc:
                if not getattr(exc, "nothing_written", False) or transaction.get_rollback():
                    raise
                # The work wrote nothing and left the transaction usable: its refusal is kept in
                # it and committed (a rollback would also drop the connection's prepared statements).
                # Only for a work whose writes are all the raising service's own (the bid view's).
                response = _refusal(exc, request, context)
            if response.status_code >= 500:  # not kept: the request may be tried again
                transaction.set_rollback(True)
                return response
            # Last, so no savepoint and no second statement: a twin that committed first makes
            # this insert fail, which rolls back this request's work with it.
            _remember(request, key, request_hash, response)
        return response
    except IntegrityError as error:
        return _replay_committed(request, key, request_hash, error)
    except Exception as exc:
        response = _refusal(exc, request, context)
    if response.status_code < 500:  # a refusal is kept too: a retry is told the same thing
        if connection.vendor == "postgresql":
            if not _remember_refusal(request, key, request_hash, response, asynchronous=refusals_async):
                return _replay_committed(request, key, request_hash, None)  # a twin's was kept first
            return response
        try:
            if connection.in_atomic_block:
                with transaction.atomic():
                    _remember(request, key, request_hash, response)
            else:  # one statement in autocommit, no BEGIN and COMMIT around it
                _remember(request, key, request_hash, response)
        except IntegrityError as error:
            return _replay_committed(request, key, request_hash, error)
    return response


def _refusal(exc: Exception, request, context) -> Response:
    """The answer to what the work (or ``before``) raised; raised again when it is not a refusal
    (a 5xx, keeping nothing)."""
    response = exception_handler(exc, context or {"request": request})
    if response is None:
        raise exc
    return response


def _scope(request) -> str:
    return scope_of(request.method, request.path)


def scope_of(method: str, path: str) -> str:
    return f"{method} {path}"[:255]


def _answer(response: Response) -> str:
    return answer_text(response.data)


def answer_text(data) -> str:
    """An answer as it is kept (the ``response`` column's JSON)."""
    return json.dumps(data, default=str)


def _remember(request, key: str, request_hash: str, response: Response) -> None:
    """Keep the answer, in the work's transaction: a twin kept first makes this fail
    (``IntegrityError``), which rolls the work back with it. One INSERT written once (PostgreSQL;
    compiling the model's insert cost more than running it), the model's own elsewhere."""
    if connection.vendor == "postgresql":
        execute_many([Statement(insert_sql(), _row(request, key, request_hash, response))])
        return
    IdempotencyKey.objects.create(
        user=request.user, key=key, scope=_scope(request), request_hash=request_hash,
        status_code=response.status_code, response=json.loads(_answer(response)),
    )  # fmt: skip


def _row(request, key: str, request_hash: str, response: Response) -> list:
    return answer_row(
        request.user.pk, key, _scope(request), request_hash, response.status_code, response.data
    )


def answer_row(user_id: int, key: str, scope: str, request_hash: str, status_code: int, data) -> list:
    """The values of ``insert_sql`` and ``refusal_sql``, in their order."""
    return [user_id, key, scope, request_hash, status_code, answer_text(data)]


def _columns(*names) -> str:
    table = IdempotencyKey._meta
    return ", ".join(connection.ops.quote_name(table.get_field(name).column) for name in names)


@cache
def insert_sql() -> str:
    """The answer's row (PostgreSQL), its values in ``_row``'s order."""
    return (
        f"INSERT INTO {connection.ops.quote_name(IdempotencyKey._meta.db_table)} "  # noqa: S608 (the model's own)
        f"({_columns('user', 'key', 'scope', 'request_hash', 'status_code', 'response', 'created_at')}) "
        f"VALUES (%s, %s, %s, %s, %s, %s::jsonb, now())"
    )


@cache
def refusal_sql() -> str:
    """``insert_sql`` that changes nothing when a request with the same key was kept first."""
    (once,) = [c for c in IdempotencyKey._meta.constraints if c.name == "idempotency_key_once"]
    return f"{insert_sql()} ON CONFLICT ({_columns(*once.fields)}) DO NOTHING RETURNING {_columns('id')}"


def _replayed(request, key: str, request_hash: str) -> Response | None:
    existing = _KEY.first(user=request.user.pk, key=key)
    return None if existing is None else _replay(existing, request_hash)


def _remember_refusal(
    request, key: str, request_hash: str, response: Response, *, asynchronous: bool
) -> bool:
    """Keep a refusal decided outside the work's transaction (PostgreSQL), by one ``INSERT`` that
    changes nothing when a request with the same key was kept first (then False: nothing written,
    nothing raised, no savepoint to roll back). ``asynchronous``: committed without waiting for the
    disk when it is a transaction of its own (``commit.execute_many_async``); in a caller's transaction
    the row is part of it, whose commit stays as durable as it was."""
    run = execute_many_async if asynchronous else execute_many
    (kept,) = run([Statement(refusal_sql(), _row(request, key, request_hash, response))])
    return bool(kept)


def _replay_committed(request, key: str, request_hash: str, error: IntegrityError | None) -> Response:
    """After an IntegrityError (or a refusal's row not inserted, ``error`` None): the answer of a
    request with the same key that committed first; if there is none, the error was the work's own
    and is raised again."""
    replayed = _replayed(request, key, request_hash)
    if replayed is None:
        raise error or IntegrityError(f"Idempotency-Key {key!r}: neither kept nor found")
    return replayed
