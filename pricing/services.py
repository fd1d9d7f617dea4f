"""Writes of pricing: recording settled trades and voiding them.

``market.deals`` calls :func:`trade_record` once a deal settles and :func:`trade_void` when one is
reversed; ``manage.py trades_import`` feeds historical trades through the same :func:`trade_record`.
Both are idempotent, so a retried call or a re-imported file changes nothing. What follows a change
(live index, statistics) hangs off :func:`_after_trade_change`, run after commit, which hands the
fact to the statistics worker through a thread of this process (``market.core.sender``); the
statistics rollups are also marked pending in the writing transaction, so a lost hook or message is
caught up by the sweep.

Recording is on the path of every settled deal, so it is kept short: the category and county are
checked against a per-process memory of codes already seen (categories for a minute, divisions
for good: they change only with a migration), and on PostgreSQL the fact and its pending mark are
one ``INSERT … ON CONFLICT DO NOTHING`` statement (no savepoint, no read first), which commits on
its own when the caller has no transaction open.
"""

import logging
import time
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from listings.models import Category
from market.accounts.uscc import USCCError, uscc_validate
from market.core.audit import audit_record
from market.core.models import Region, RegionLevel
from market.core.regions import region_county_require
from market.core.sender import BatchSender
from pricing.models import TradeFact, TradeFactRollupMark, TradeSource
from pricing.rollups import rollups_mark_pending

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")

# The names the validation messages give the arguments of trade_record and trade_void (a context of
# their own: the English of a message's subject differs from a column heading's).
FIELD_LABELS = {
    "trade_id": pgettext_lazy("trade field", "成交编号"),
    "source": pgettext_lazy("trade field", "来源"),
    "awarded_at": pgettext_lazy("trade field", "成交时间"),
    "settled_at": pgettext_lazy("trade field", "结算时间"),
    "category_code": pgettext_lazy("trade field", "品类代码"),
    "county_code": pgettext_lazy("trade field", "区县代码"),
    "seller_uscc": pgettext_lazy("trade field", "卖方统一社会信用代码"),
    "buyer_uscc": pgettext_lazy("trade field", "买方统一社会信用代码"),
    "quantity_t": pgettext_lazy("trade field", "数量（吨）"),
    "unit_price": pgettext_lazy("trade field", "单价（元/吨）"),
    "amount": pgettext_lazy("trade field", "金额（元）"),
    "reason": pgettext_lazy("trade field", "作废原因"),
}


def trade_amount(quantity_t: Decimal, unit_price: Decimal) -> Decimal:
    """Quantity times unit price, rounded half up to the fen."""
    return (quantity_t * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


class _Errors:
    """Field errors collected over one call, raised together so a caller sees every problem at once."""

    def __init__(self):
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, message: str, code: str) -> None:
        self.by_field.setdefault(field, []).append(ValidationError(message, code=code))

    def raise_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _label(field: str) -> str:
    return str(FIELD_LABELS[field])


def _text(errors: _Errors, field: str, value, max_length: int) -> str:
    text = str(value or "").strip()
    if not text:
        errors.add(field, _("%(field)s不能为空。") % {"field": _label(field)}, "required")
    elif len(text) > max_length:
        errors.add(
            field,
            _("%(field)s不能超过%(max)d个字符。") % {"field": _label(field), "max": max_length},
            "too_long",
        )
    return text


def _moment(errors: _Errors, field: str, value) -> datetime | None:
    if not isinstance(value, datetime):
        errors.add(field, _("%(field)s必须是日期时间。") % {"field": _label(field)}, "invalid_datetime")
        return None
    if timezone.is_naive(value):
        errors.add(
            field,
            _("%(field)s必须带时区（不接受无时区的时间）。") % {"field": _label(field)},
            "naive_datetime",
        )
        return None
    return value


def _positive(errors: _Errors, field: str, value, *, max_digits: int, places: int) -> Decimal | None:
    """``value`` as a Decimal that fits ``DecimalField(max_digits, places)`` and is above zero.

    Floats are refused (money and weights are never floats); strings and integers are read exactly.
    More decimal places than stored are refused rather than rounded, so nobody's number changes.
    """
    label = _label(field)
    number = None
    if not isinstance(value, (float, bool)):
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError, TypeError):
            number = None
    if number is None or not number.is_finite():
        errors.add(
            field,
            _("%(field)s不是有效的数字：“%(value)s”。")
            % {"field": label, "value": "" if value is None else value},
            "invalid_number",
        )
        return None
    if number <= 0:
        errors.add(field, _("%(field)s必须大于0。") % {"field": label}, "not_positive")
        return None
    if number >= Decimal(10) ** (max_digits - places):
        errors.add(field, _("%(field)s超出允许的范围。") % {"field": label}, "out_of_range")
        return None
    step = Decimal(1).scaleb(-places)
    if number != number.quantize(step):
        errors.add(
            field,
            _("%(field)s最多保留%(places)d位小数。") % {"field": label, "places": places},
            "too_precise",
        )
        return None
    return number.quantize(step)


def _uscc(errors: _Errors, field: str, value) -> str:
    try:
        return uscc_validate(str(value or ""))
    except USCCError as exc:
        errors.add(
            field, _("%(field)s：%(message)s") % {"field": _label(field), "message": exc.message}, exc.code
        )
        return ""


# The codes a trade may carry, read once and kept in memory: the catalogue's for CATEGORY_MEMORY_S
# seconds (it is edited in the admin; a code added meanwhile is looked up on its own), the county-level
# divisions for the life of the process (they change only with a migration). A category removed
# meanwhile makes the insert fail on its foreign key, and both are then checked afresh.
CATEGORY_MEMORY_S = 60.0
_categories: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
_counties: frozenset[str] | None = None


def _memory_clear() -> None:
    global _categories, _counties
    _categories, _counties = (float("-inf"), frozenset()), None


def _category_known(code: str) -> bool:
    global _categories
    read_at, codes = _categories
    if time.monotonic() - read_at >= CATEGORY_MEMORY_S:
        _categories = read_at, codes = (
            time.monotonic(),
            frozenset(Category.objects.values_list("code", flat=True)),
        )
    return code in codes or Category.objects.filter(pk=code).exists()


def _county_known(code: str) -> bool:
    """Whether ``code`` is county level (``region_county_require`` for every code at once): a
    county, or a prefecture-level city without counties."""
    global _counties
    if _counties is None:
        parents = set(Region.objects.filter(parent__isnull=False).values_list("parent_id", flat=True))
        _counties = frozenset(
            code
            for code, level in Region.objects.values_list("code", "level")
            if level == RegionLevel.COUNTY or (level == RegionLevel.CITY and code not in parents)
        )
    return code in _counties


def _category(errors: _Errors, code) -> str | None:
    code = str(code or "").strip()
    if code and _category_known(code):
        return code
    errors.add("category_code", _("品类代码“%(code)s”不存在。") % {"code": code}, "category_unknown")
    return None


def _county(errors: _Errors, code) -> str | None:
    code = str(code or "").strip()
    if _county_known(code):
        return code
    try:
        region_county_require(code, field="county_code")
    except ValidationError as exc:
        not_county = any(e.code == "region_not_county" for e in exc.error_dict.get("county_code", []))
        if not_county:
            errors.add(
                "county_code",
                _("区县代码“%(code)s”不是区县一级的行政区划。") % {"code": code},
                "region_not_county",
            )
        else:
            errors.add("county_code", _("区县代码“%(code)s”不存在。") % {"code": code}, "region_unknown")
        return None
    return code  # county level after all (a division loaded since): the rule's own answer counts


_INSERT_SQL: str | None = None


def _insert_sql() -> str:
    """PostgreSQL: the fact, unless its trade id is recorded already, and its pending mark (what
    ``rollups_mark_pending`` writes) in one statement; returns the new id, or no row."""
    global _INSERT_SQL
    if _INSERT_SQL is None:
        qn = connection.ops.quote_name
        fields = [f for f in TradeFact._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(qn(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        fact, mark = qn(TradeFact._meta.db_table), qn(TradeFactRollupMark._meta.db_table)
        _INSERT_SQL = f"""
            WITH fact AS (
                INSERT INTO {fact} ({columns}) VALUES ({marks})
                ON CONFLICT ({qn("trade_id")}) DO NOTHING RETURNING {qn("id")}
            ), mark AS (
                INSERT INTO {mark} (fact_id, counted, pending, updated_at)
                SELECT {qn("id")}, false, true, now() FROM fact
            )
            SELECT {qn("id")} FROM fact
        """  # noqa: S608 - table and column names from the model; every value is a parameter
    return _INSERT_SQL


def _fact_insert(fact: TradeFact) -> bool:
    """Insert ``fact`` with its rollup mark pending; False (and nothing written) when its trade id is
    recorded already, by an earlier or a concurrent call."""
    if connection.vendor == "postgresql":
        # Values checked above and of the driver's own types (str, aware datetime, Decimal, None).
        params = [f.pre_save(fact, True) for f in TradeFact._meta.concrete_fields if not f.primary_key]
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(), params)
            row = cursor.fetchone()
        if row is None:
            return False
        fact.pk = row[0]
        fact._state.adding = False
        fact._state.db = connection.alias
        return True
    with transaction.atomic():
        # get_or_create inserts inside its own savepoint and, when a concurrent caller inserted the
        # same trade_id first (IntegrityError on the unique column), reads that row instead.
        values = {f.attname: getattr(fact, f.attname) for f in TradeFact._meta.concrete_fields}
        values.pop("id")
        values.pop("created_at")
        trade_id = values.pop("trade_id")
        stored, created = TradeFact.objects.get_or_create(trade_id=trade_id, defaults=values)
        if created:
            rollups_mark_pending(stored.pk)
    fact.pk, fact.created_at = stored.pk, stored.created_at
    fact._state.adding = False
    fact._state.db = stored._state.db
    return created


def trade_record(
    *,
    trade_id: str,
    awarded_at: datetime,
    settled_at: datetime,
    category_code: str,
    county_code: str,
    seller_uscc: str,
    buyer_uscc: str,
    quantity_t: Decimal,
    unit_price: Decimal,
    source: str = "deal",
) -> TradeFact:
    """Record one settled trade, or return the fact already recorded under ``trade_id``.

    Idempotent: a second call with the same ``trade_id`` changes nothing and returns the existing
    row (a warning is logged if its values differ from the stored ones; a voided fact stays voided,
    a trade id is never reused). Safe under concurrency: of simultaneous calls one inserts and the
    others read its row. The after-commit hook runs only when a row was inserted. The arguments are
    validated before anything is looked up, every problem raised at once as a ``ValidationError``
    keyed by argument name: unknown category or county (the county must be county level, or a
    prefecture-level city without counties), USCCs that fail GB 32100, quantities and prices that
    are not positive or do not fit the columns, naive datetimes, a settlement before the award.
    Whether the trade is *eligible* for an index (METHODOLOGY.md section 1) is decided later, not here.
    """
    errors = _Errors()
    trade_id = _text(errors, "trade_id", trade_id, TradeFact._meta.get_field("trade_id").max_length)
    if source not in TradeSource.values:
        errors.add("source", _("来源“%(source)s”无效。") % {"source": source}, "invalid_choice")
    awarded = _moment(errors, "awarded_at", awarded_at)
    settled = _moment(errors, "settled_at", settled_at)
    if awarded is not None and settled is not None and settled < awarded:
        errors.add("settled_at", _("结算时间不能早于成交时间。"), "settled_before_awarded")
    category = _category(errors, category_code)
    region = _county(errors, county_code)
    seller = _uscc(errors, "seller_uscc", seller_uscc)
    buyer = _uscc(errors, "buyer_uscc", buyer_uscc)
    quantity = _positive(errors, "quantity_t", quantity_t, max_digits=16, places=3)
    price = _positive(errors, "unit_price", unit_price, max_digits=14, places=2)
    amount = None
    if quantity is not None and price is not None:
        amount = trade_amount(quantity, price)
        if amount <= 0:
            errors.add("amount", _("金额（数量×单价）不足0.01元。"), "amount_too_small")
        elif amount >= Decimal(10) ** 16:
            errors.add("amount", _("%(field)s超出允许的范围。") % {"field": _label("amount")}, "out_of_range")
    errors.raise_any()

    values = {
        "source": source,
        "awarded_at": awarded,
        "settled_at": settled,
        "category_id": category,
        "region_id": region,
        "seller_uscc": seller,
        "buyer_uscc": buyer,
        "quantity_t": quantity,
        "unit_price": price,
        "amount": amount,
    }
    fact = TradeFact(trade_id=trade_id, **values)
    try:
        created = _fact_insert(fact)  # with its rollup mark pending: the sweep finds it if the hook is lost
    except IntegrityError:
        # A category or county remembered as valid has gone meanwhile: check both afresh. (Inside
        # the caller's transaction the foreign keys are checked at its commit, not here.)
        _memory_clear()
        if connection.in_atomic_block:
            raise
        _category(errors, category_code)
        _county(errors, county_code)
        errors.raise_any()
        raise
    if created:
        transaction.on_commit(lambda: _after_trade_change(fact), robust=True)
        return fact
    fact = TradeFact.objects.get(trade_id=trade_id)
    differing = sorted(name for name, value in values.items() if getattr(fact, name) != value)
    if differing:
        logger.warning(
            "trade %s already recorded; the call's %s differ from the stored fact, which is kept",
            trade_id,
            ", ".join(name.removesuffix("_id") for name in differing),
        )
    return fact


def trade_void(*, trade_id: str, reason: str) -> TradeFact | None:
    """Mark the fact of a reversed trade voided, keeping the row; None if no such trade was recorded.

    Idempotent: voiding a voided fact returns it unchanged (the first time and reason stay). The
    void is audited in the same transaction, and the change hook runs after commit.
    """
    errors = _Errors()
    reason = _text(errors, "reason", reason, 2000)
    errors.raise_any()
    with transaction.atomic():
        fact = TradeFact.objects.select_for_update().filter(trade_id=str(trade_id or "").strip()).first()
        if fact is None or fact.voided_at is not None:
            return fact
        fact.voided_at = timezone.now()
        fact.void_reason = reason
        fact.save(update_fields=["voided_at", "void_reason"])
        rollups_mark_pending(fact.pk)
        audit_record(
            actor=None, action="trade.void", target=fact, reason=reason, data={"trade_id": fact.trade_id}
        )
        transaction.on_commit(lambda: _after_trade_change(fact), robust=True)
    return fact


def _changes_send(fact_ids: list[int]) -> None:
    """The sender's thread: one message to the statistics worker for the facts changed since the
    last (``pricing.tasks.stats_facts_changed``: their rollups, then their series' live ticks)."""
    from pricing.tasks import stats_facts_changed

    stats_facts_changed.apply_async((fact_ids,), retry=False)


# Off the caller's path: a settled deal's request returns after its insert and its commit; the
# worker brings the rollups in line and pushes the ticks a few milliseconds later.
_changes = BatchSender("trade facts changed", _changes_send)


def changes_flush(timeout: float = 60.0) -> bool:
    """Wait until this process's sender has sent every fact handed to it (``trades_import`` at its
    end, before the process exits); False on ``timeout`` (what is left is the sweep's)."""
    return _changes.flush(timeout)


def _after_trade_change(fact: TradeFact) -> None:
    """Run after the commit that recorded or voided ``fact``: hand its id to this process's sender,
    whose thread asks the statistics worker to apply it to the rollups and, for a recorded fact, to
    compute and push the indicative index of its series (``/ws/indices/``).

    Nothing is lost with the message: the fact's rollup mark was set pending in the writing
    transaction, applying is idempotent (``pricing.rollups.rollups_fact_apply``), and the periodic
    sweep (``pricing.tasks.stats_sweep``) applies whatever a lost message (a crashed process, a
    broker down, a full backlog) left pending. A lost tick costs nothing: the next trade's tick and
    the close follow.
    """
    logger.debug(
        "trade fact %s %s (category %s, region %s): handed to the statistics worker",
        fact.trade_id,
        "voided" if fact.voided_at else "recorded",
        fact.category_id,
        fact.region_id,
    )
    _changes.put(fact.pk)
