"""A bid placed in two round trips to PostgreSQL before its answer: the bid gateway's service
(``market.trading.gateway`` reads the request and renders the answer).

1. one round trip (a psycopg pipeline): ``BEGIN``; the API token with its user and first membership
   (the statement ``TokenAuthentication`` runs); the request's ``Idempotency-Key`` if it was used; the
   lot's live sale, locked only when the bid may be placed (``_sale_sql``: above the price as
   ``services._sale_for_bid``, so a bid the price has reached is refused without waiting for the
   lock; a member who may bid; a key not used before), with the bidder's and the leader's rows and,
   for a first bid, the new bidder row's id; the sale as committed now, decoded only for a refusal;
2. the rules in Python, the same functions the view's service runs (``engine.bid_apply`` on the
   sale's state, ``eligibility_check``, ``sale_state_for`` for the answer); for a sale that asks for
   a deposit, one more round trip locks the bidder's deposit after the sale, as the view does;
3. one round trip: the bidder row if new, the bid rows with the sale's new state and the bidder's
   maximum (``services._steps_changes``: one statement), the answer kept for the key and the audit
   entry of a moved close, then ``COMMIT``. After the commit, as the view: the live message, the
   lot's market columns and the notices (``services._after_bid``: one round trip, committed without
   waiting for the disk; the lot's row is never locked under the sale's), their live messages (with
   the lot's, in one round trip to Redis).

A transaction that wrote nothing (a refusal, a hand-over to the view) ends with ``COMMIT``, not
``ROLLBACK``: psycopg forgets the connection's prepared statements at every rollback. BEGIN and
COMMIT are statements in the pipelines (a savepoint inside a caller's transaction, as in the tests).

None (the view answers, nothing written): a licence, province or credit rule, a sale not open, a
tender, a key used before for another request, a race with a twin (``IntegrityError``), and any
error before the commit. The answers and rows are the view's own (but for ``server_time``):
``tests/trading/test_gateway.py`` sends the same bids both ways and compares them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import Error as PsycopgError
from psycopg import IntegrityError as PsycopgIntegrityError
from psycopg.pq import ExecStatus, TransactionStatus
from rest_framework.authtoken.models import Token

from listings.models import Lot, LotStatus, TradeMode
from market.accounts.authentication import MEMBER_BY_TOKEN
from market.accounts.models import (
    RECYCLER_ROLES,
    TRADING_ROLES,
    GovernmentOfficer,
    Membership,
    Organisation,
    User,
    VerificationStatus,
)
from market.accounts.selectors import government_officer_for
from market.core import idempotency
from market.core.audit import audit_entry
from market.core.fanout import fanout_batched
from market.core.models import IdempotencyKey
from market.core.prepared import Prepared
from market.core.statements import (
    Statement,
    insert_statement,
    insert_with_updates_statement,
    statement_results,
)
from market.trading import engine, services
from market.trading.models import Bidder, Deposit, Sale, SaleStatus

logger = logging.getLogger(__name__)

_SAVEPOINT = "bid_gateway"
TUPLES_OK = ExecStatus.TUPLES_OK


# --- the reads ---------------------------------------------------------------------------------

_KEY_BY_TOKEN = Prepared(
    lambda token, key: IdempotencyKey.objects.filter(user__auth_token__key=token, key=key).order_by("pk")[:1],
    token=str,
    key=str,
)

_SALE_FIELDS = tuple(f.attname for f in Sale._meta.concrete_fields)
# In the model's order, as ``from_db`` takes a partial row.
_LOT_FIELDS = tuple(
    f.attname for f in Lot._meta.concrete_fields
    if f.attname in {"id", "status", "seller_id", "hazardous", "title", "category_id"}
)  # fmt: skip
_BIDDER_FIELDS = ("id", "label_index", "maximum", "created_at")


def _sql_list(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# ``Membership.can_trade`` and ``Organisation.is_recycler``, as SQL (the checks in Python run too).
_TRADING_ROLES = _sql_list(TRADING_ROLES)
_RECYCLER_ROLES = _sql_list(RECYCLER_ROLES)


@cache
def _sale_sql(locked: bool) -> str:
    """The lot's active sale with its lot: ``locked``, with the bidder's row, the leader's and a new
    bidder row's id (parameters: the token, the key or "", the lot, the amount); else as committed
    (the lot).

    The lock is asked for only when the gateway may place the bid: the bid is above the price (or
    from its leader: as ``services._sale_for_bid``), the token's acting organisation may bid (``me``
    below), and the key was not kept before (a retry is replayed without the lock). A request that
    fails any of these locks nothing; the reads beside it say why."""
    sale, lot = Sale._meta.db_table, Lot._meta.db_table
    bidder = Bidder._meta.db_table
    # The token's organisation, its user's first membership (``memberships_of``'s order, as the
    # view's), when the gateway may bid for it: an active user, not a government officer, a trading
    # member of a verified recycler that is not blacklisted; else NULL.
    me = (
        f"SELECT CASE WHEN u.is_active AND m.role IN {_TRADING_ROLES} AND o.status = '{VerificationStatus.VERIFIED}' "  # noqa: S608 (the models' names)
        f"AND o.role IN {_RECYCLER_ROLES}"
        f"AND o.blacklisted_at IS NULL AND NOT EXISTS (SELECT 1 FROM {GovernmentOfficer._meta.db_table} g "
        "WHERE g.user_id = u.id) THEN m.organisation_id END AS organisation_id, u.id AS user_id "
        f"FROM {Token._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id "
        f"JOIN {Membership._meta.db_table} m ON m.user_id = u.id "
        f"JOIN {Organisation._meta.db_table} o ON o.id = m.organisation_id "
        "WHERE t.key = %s ORDER BY m.created_at, m.id LIMIT 1"
    )
    columns = [
        *(f's."{c}"' for c in _SALE_FIELDS),
        *(f'l."{c}"' for c in _LOT_FIELDS),
        "jsonb_array_length(s.allowed_provinces) = 0",
    ]
    if not locked:
        return (
            f"SELECT {', '.join(columns)} FROM {sale} s JOIN {lot} l ON l.id = s.lot_id "  # noqa: S608 (the models' names)
            f"WHERE s.lot_id = %s AND s.status = '{SaleStatus.ACTIVE}' ORDER BY s.id LIMIT 1"
        )
    columns += [
        *(f'b."{c}"' for c in _BIDDER_FIELDS),
        *(f'lb."{c}"' for c in _BIDDER_FIELDS),
        f"CASE WHEN b.id IS NULL THEN nextval(pg_get_serial_sequence('{bidder}', 'id')) END",
    ]
    kept = f"SELECT 1 FROM {IdempotencyKey._meta.db_table} k WHERE k.user_id = me.user_id AND k.key = %s"  # noqa: S608
    return (
        f"WITH me AS MATERIALIZED ({me}) "  # noqa: S608 (the models' names)
        f"SELECT {', '.join(columns)} FROM me, {sale} s JOIN {lot} l ON l.id = s.lot_id "
        f"LEFT JOIN {bidder} b ON b.sale_id = s.id AND b.organisation_id = (SELECT organisation_id FROM me) "
        f"LEFT JOIN {bidder} lb ON lb.sale_id = s.id AND lb.organisation_id = s.leader_id "
        f"WHERE me.organisation_id IS NOT NULL AND NOT EXISTS ({kept}) "
        f"AND s.lot_id = %s AND s.status = '{SaleStatus.ACTIVE}' "
        "AND (s.current_price IS NULL OR s.current_price < %s OR s.leader_id = me.organisation_id) "
        "ORDER BY s.id LIMIT 1 FOR UPDATE OF s"
    )


@dataclass
class Read:
    sale: Sale
    open_to_anyone: bool  # no province rule
    mine: Bidder | None
    leader: Bidder | None
    new_bidder_id: int | None


def _bidder_of(sale: Sale, organisation_id, values) -> Bidder | None:
    if values[0] is None:
        return None
    read = dict(zip(_BIDDER_FIELDS, values, strict=True), sale_id=sale.pk, organisation_id=organisation_id)
    names = [f.attname for f in Bidder._meta.concrete_fields]
    return Bidder.from_db("default", names, [read[n] for n in names])


def _read_of(row, organisation_id: int | None) -> Read:
    n, m = len(_SALE_FIELDS), len(_LOT_FIELDS)
    sale = Sale.from_db("default", _SALE_FIELDS, row[:n])
    if isinstance(sale.allowed_provinces, str):  # jsonb comes as text: the field's own loading
        sale.allowed_provinces = json.loads(sale.allowed_provinces)
    sale.lot = Lot.from_db("default", _LOT_FIELDS, row[n : n + m])
    open_to_anyone = row[n + m]
    rest = row[n + m + 1 :]
    if not rest:
        return Read(sale, open_to_anyone, None, None, None)
    k = len(_BIDDER_FIELDS)
    mine = _bidder_of(sale, organisation_id, rest[:k])
    leader = _bidder_of(sale, sale.leader_id, rest[k : 2 * k])
    return Read(sale, open_to_anyone, mine, leader, rest[2 * k])


# --- sending ---------------------------------------------------------------------------------------


def _send(statements: list[tuple[str, list | None]], *, unless: tuple[int, int] | None = None) -> list:
    """Run ``statements`` in one round trip (a psycopg pipeline) where the connection stands; each
    one's rows, or the number of rows it changed. ``unless=(i, j)``: statement j's rows are not
    decoded (None) when statement i returned some. Logged as Django logs its queries."""
    raw = connection.connection
    cursors = []
    started = time.monotonic()
    with connection.wrap_database_errors:
        try:
            with raw.pipeline():
                for sql, params in statements:
                    cursor = raw.cursor()
                    cursors.append(cursor)
                    cursor.execute(sql, params)
            results = []
            for i, c in enumerate(cursors):
                # (Not ``description``: it builds a column object for each column, every time.)
                if c.pgresult.status != TUPLES_OK:
                    results.append(c.rowcount)
                elif unless is not None and i == unless[1] and results[unless[0]]:
                    results.append(None)
                else:
                    results.append(c.fetchall())
        finally:
            for cursor in cursors:
                cursor.close()
    if connection.queries_logged:
        took = f"{time.monotonic() - started:.3f}"
        for sql, _params in statements:
            connection.queries_log.append({"sql": sql, "time": took})
    return results


class _Transaction:
    """``BEGIN`` … ``COMMIT`` sent as statements in the pipelines (no round trip of their own); a
    savepoint inside a caller's transaction (the tests')."""

    def __init__(self):
        self.nested = connection.in_atomic_block
        self.open = False
        self.committing = False  # the round trip that ends with the commit was sent

    def begin(self) -> tuple[str, None]:
        self.open = True
        return (f"SAVEPOINT {_SAVEPOINT}" if self.nested else "BEGIN", None)

    def commit(self) -> list[tuple[str, None]]:
        return [(f"RELEASE SAVEPOINT {_SAVEPOINT}" if self.nested else "COMMIT", None)]

    def end(self) -> list[tuple[str, None]]:
        """The end of a transaction that wrote nothing (it only read, and locked): a commit, not a
        rollback, which would also make psycopg forget the connection's prepared statements."""
        return self.commit()

    def closed(self) -> None:
        self.open = False

    def abandon(self) -> None:
        """After an error: the transaction rolled back, whatever state the server left it in."""
        if not self.open:
            return
        self.open = False
        try:
            if self.nested:
                _send(
                    [(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}", None), (f"RELEASE SAVEPOINT {_SAVEPOINT}", None)]
                )
            else:
                connection.connection.rollback()
        except Exception:
            logger.exception("bid gateway: the rollback failed; the connection is closed")
            connection.close()


class Defer(Exception):
    """The view answers this bid (nothing was written)."""


# --- the bid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """A bid as the gateway read it from its request."""

    lot_id: int
    token: str  # the API token
    amount: Decimal
    maximum: Decimal | None
    key: str  # "" without an Idempotency-Key
    scope: str  # the key's scope (method and path)
    request_hash: str  # the key's request hash ("" without a key)
    ip: str | None


@dataclass(frozen=True)
class Answer:
    status: int
    data: dict
    replayed: bool = False  # the answer kept for the key, given again


def bid_place_pipelined(
    ask: Ask, *, refusal_answer: Callable[[Exception], tuple[int, dict]]
) -> Answer | None:
    """Place the bid ``ask`` in two round trips, or refuse it (``refusal_answer`` renders a refusal
    as the view would: its status and body, kept for the key); None: nothing written, the API view is
    to answer it."""
    connection.ensure_connection()
    tx = _Transaction()
    try:
        return _bid(ask, tx, refusal_answer)
    except Defer:
        return None
    except Exception as exc:
        # Before the commit was sent, or refused with it (a twin's key, a bidder row raced: the
        # statements after an error are not run, the commit neither): nothing written, the view
        # answers. Anything else around the commit may have committed: the error stands (a 5xx),
        # and a retry with the key is told the first answer.
        integrity = isinstance(exc, IntegrityError | PsycopgIntegrityError)
        if tx.open and (not tx.committing or integrity or _aborted()):
            tx.abandon()
            if integrity or isinstance(exc, DatabaseError | PsycopgError):
                logger.info("bid gateway: %s; the view answers", type(exc).__name__)
            else:
                logger.exception("bid gateway: failed before the commit; the view answers")
            return None
        raise
    finally:
        tx.abandon()


def _aborted() -> bool:
    """The connection is fine and its transaction aborted by an error: a statement before the commit
    failed, so the commit was not run (the statements after an error in a pipeline are skipped)."""
    raw = connection.connection
    return raw is not None and not raw.broken and raw.info.transaction_status == TransactionStatus.INERROR


def _bid(ask: Ask, tx: _Transaction, refusal_answer) -> Answer:
    token, lot_id = ask.token, ask.lot_id
    reads = [
        tx.begin(),
        MEMBER_BY_TOKEN.sql(key=token),
        (_sale_sql(True), [token, ask.key, lot_id, ask.amount]),
        (_sale_sql(False), [lot_id]),
    ]
    if ask.key:
        reads.append(_KEY_BY_TOKEN.sql(token=token, key=ask.key))
    _, members, locked, now_rows, *keys = _send(reads, unless=(2, 3))  # the sale as committed: for a refusal
    membership = (MEMBER_BY_TOKEN.instances(members) or [None])[0]
    if membership is None:
        _rollback(tx)
    user, organisation = membership.user, membership.organisation
    if not user.is_active or government_officer_for(user) is not None or not membership.can_trade:
        _rollback(tx)
    if organisation.is_blacklisted or not (organisation.is_recycler and organisation.is_verified):
        _rollback(tx)
    if keys and keys[0]:  # a retry: the first answer, or the view's refusal of a key used before
        (kept,) = _KEY_BY_TOKEN.instances(keys[0])
        _send(tx.end())
        tx.closed()
        if kept.request_hash != ask.request_hash:
            raise Defer
        return Answer(kept.status_code, kept.response, replayed=True)
    if not locked:
        return _refused_from(ask, tx, user.pk, organisation, now_rows, refusal_answer)
    read = _read_of(locked[0], organisation.pk)
    sale = read.sale
    now = timezone.now()
    if not _plain_auction(read, organisation, now):
        _rollback(tx)
    rules, auction = services.rules_of(sale), services.state_of(sale)
    floor = engine.too_low(rules, auction, bidder=organisation.pk, amount=ask.amount, maximum=ask.maximum)
    if floor is not None:  # the view refuses it before its lock, before the deposit and the rules
        refusal = services.TradeRefused("bid_too_low", minimum=floor)
        return _refuse(ask, tx, user.pk, refusal, refusal_answer)
    deposit = _deposit_locked(sale, organisation) if sale.deposit_amount > 0 else None
    try:
        services.eligibility_check(sale, organisation, deposit=deposit)
    except services.TradeRefused as refusal:  # the rules left to it are the deposit's
        return _refuse(ask, tx, user.pk, refusal, refusal_answer)
    try:
        outcome = engine.bid_apply(
            rules, auction, bidder=organisation.pk, amount=ask.amount,
            maximum=ask.maximum, order=sale.sequence + 1, now=now,
        )  # fmt: skip
    except engine.Refused as exc:
        return _refuse(ask, tx, user.pk, services._refused(exc), refusal_answer)
    writes = []
    authorised = ask.maximum or ask.amount
    bidders = {}
    if read.mine is not None:
        bidder = read.mine
        raised = services._bidder_maximum_raise(bidder, authorised)
        also = [raised] if raised else []
    else:
        bidder = Bidder(
            id=read.new_bidder_id, sale=sale, organisation_id=organisation.pk, label_index=sale.bidder_count,
            maximum=authorised, created_at=now,
        )  # fmt: skip
        sale.bidder_count += 1
        writes.append(_bidder_insert(bidder))
        also = []
    bidders[organisation.pk] = bidder
    if read.leader is not None:
        bidders.setdefault(read.leader.organisation_id, read.leader)
    if any(step.bidder not in bidders for step in outcome.steps):
        _rollback(tx)  # a leader without a bidder row read: the view looks it up
    rows, updates = services._steps_changes(
        sale, outcome, actor=user, acting_org=organisation.pk, ip=ask.ip, known=bidders, also=also
    )  # fmt: skip
    writes.append(insert_with_updates_statement(rows, updates))
    if outcome.extended:  # the close moved (as the view audits it)
        entry = audit_entry(
            actor=None, action="sale.extend", target=sale, data={"closes_at": sale.closes_at.isoformat()}
        )
        writes.append(insert_statement([entry]))
    leader = bidders.get(sale.leader_id)
    known = services._known(leader.label if leader is not None else services._UNKNOWN)
    from market.trading.selectors import sale_state_for

    state = sale_state_for(sale, organisation, bidder=bidder, deposit=deposit, **known)
    if ask.key:
        writes.append(
            Statement(
                idempotency.insert_sql(),
                idempotency.answer_row(user.pk, ask.key, ask.scope, ask.request_hash, 201, state),
            )
        )
    market = services._lot_market_fields(sale)
    tx.committing = True
    results = _send([(s.sql, s.params) for s in writes] + tx.commit())
    tx.closed()
    try:
        statement_results(writes, results[: len(writes)])
        # After the commit, as the view: the live message, then the lot's market columns and the
        # notices in a transaction of their own (the lot's row is never locked under the sale's), and
        # their live messages; those to Redis in one round trip.
        with fanout_batched():
            services._after_change(sale, event="extended" if outcome.extended else "bid", bids=rows, **known)
            transaction.on_commit(
                lambda: services._after_bid(sale, outcome, bidder_org=organisation.pk, market=market),
                robust=True,
            )
    except Exception:  # the bid is committed: its answer is a 201, whatever failed after it
        logger.exception("sale %s: after bid %s", sale.pk, sale.sequence)
    return Answer(201, state)


@cache
def _deposit_sql() -> str:
    return (
        f"SELECT {', '.join(_DEPOSIT_FIELDS)} FROM {Deposit._meta.db_table} "  # noqa: S608 (the model's names)
        "WHERE sale_id = %s AND organisation_id = %s ORDER BY id LIMIT 1 FOR UPDATE"
    )


_DEPOSIT_FIELDS = tuple(
    f.attname for f in Deposit._meta.concrete_fields if f.attname in {"id", "sale_id", "organisation_id", "amount", "status"}
)  # fmt: skip


def _deposit_locked(sale: Sale, organisation) -> Deposit | None:
    """The bidder's deposit for the sale, locked after the sale (the floor's one order of row locks),
    as the view reads it: one more round trip, for a sale that asks for a deposit."""
    (rows,) = _send([(_deposit_sql(), [sale.pk, organisation.pk])])
    return Deposit.from_db("default", _DEPOSIT_FIELDS, rows[0]) if rows else None


def _plain_auction(read: Read, organisation, now) -> bool:
    """A live auction open now, with no rule the gateway leaves to the view (a licence, provinces,
    a credit score), on a published lot of another organisation."""
    sale = read.sale
    return (
        sale.mode == TradeMode.AUCTION
        and sale.lot.status == LotStatus.PUBLISHED
        and not sale.lot.hazardous
        and read.open_to_anyone
        and sale.min_credit_score is None
        and sale.lot.seller_id != organisation.pk
        and sale.starts_at <= now < sale.closes_at
    )


def _bidder_insert(bidder: Bidder) -> Statement:
    names = list(Bidder._meta.concrete_fields)
    columns = ", ".join(f'"{f.column}"' for f in names)
    values = [f.get_db_prep_save(getattr(bidder, f.attname), connection) for f in names]
    sql = f"INSERT INTO {Bidder._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"  # noqa: S608
    return Statement(sql, values)


def _rollback(tx: _Transaction):
    """Hand the bid to the view: the transaction ended, nothing written."""
    _send(tx.end())
    tx.closed()
    raise Defer


def _refused_from(ask: Ask, tx, user_id: int, organisation, now_rows, refusal_answer) -> Answer:
    """No sale was locked: the bid is below a price that has moved (answered here, as the view's
    check before the lock answers it), or anything else (the view's)."""
    if not now_rows:
        _rollback(tx)
    read = _read_of(now_rows[0], organisation.pk)
    sale, now = read.sale, timezone.now()
    if not _plain_auction(read, organisation, now):
        _rollback(tx)
    floor = engine.too_low(
        services.rules_of(sale), services.state_of(sale), bidder=organisation.pk, amount=ask.amount,
        maximum=ask.maximum,
    )  # fmt: skip
    if floor is None:
        _rollback(tx)
    return _refuse(ask, tx, user_id, services.TradeRefused("bid_too_low", minimum=floor), refusal_answer)


def _refuse(ask: Ask, tx, user_id: int, refusal, refusal_answer) -> Answer:
    """The refusal's answer (as the caller renders it: ``refusal_answer``), kept for the key
    (committed without waiting for the disk, as the view keeps its refusals), in the round trip that
    ends the bid's transaction (which wrote nothing)."""
    status, data = refusal_answer(refusal)
    statements = tx.end()
    if ask.key:
        keep = (idempotency.refusal_sql(), idempotency.answer_row(
            user_id, ask.key, ask.scope, ask.request_hash, status, data
        ))  # fmt: skip
        if not tx.nested:
            statements += [("BEGIN", None), ("SET LOCAL synchronous_commit TO OFF", None)]
        kept_at = len(statements)
        statements.append(keep)
        if not tx.nested:
            statements.append(("COMMIT", None))
    results = _send(statements)
    tx.closed()
    if ask.key and not results[kept_at]:
        raise Defer  # a twin's answer was kept first (no row returned): the view replays it
    return Answer(status, data)
