"""Writes of the trading floor: configure a sale, bid, buy, offer, deposit, close.

Every write that touches a sale locks its row first (``Sale`` is the lot's trading row), then the
bidder's deposit: one order of row locks everywhere. Bids are inserted, never changed. Live
messages, notifications, search indexing and scheduled closes run only after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import F, FilteredRelation, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from listings.models import Lot, LotStatus, TradeMode, WantedOffer
from listings.services import (
    buyer_require,
    lot_market_statement,
    lot_market_update,
    lot_trading_end,
    seller_require,
    wanted_offer_accept,
)
from market.accounts.models import Organisation
from market.accounts.selectors import licence_valid_for, trading_members, trading_members_sql
from market.accounts.services import member_require
from market.core.audit import audit_record
from market.core.commit import execute_many_async
from market.core.drf import Refusal
from market.core.fanout import fanout_publish_on_commit
from market.core.models import Region, RegionLevel
from market.core.money import yuan_text as _yuan
from market.core.notify import notify_users, notify_users_statement
from market.core.prepared import Prepared
from market.core.state import transition
from market.core.statements import Statement, execute_many, insert_with_updates, row_update_statement
from market.trading import engine
from market.trading.models import (
    DEPOSIT_TRANSITIONS,
    SALE_TRANSITIONS,
    Award,
    AwardSource,
    Bid,
    Bidder,
    BidKind,
    Deposit,
    DepositStatus,
    FailReason,
    LotOffer,
    LotOfferStatus,
    Sale,
    SaleStatus,
    award_amount,
)
from market.trading.signals import award_created, deposit_moved

logger = logging.getLogger(__name__)

# --- refusals -------------------------------------------------------------------------------

REFUSALS = {
    # code: (HTTP status, message)
    "bid_too_low": (400, gettext_noop("出价过低：当前最低可出价 ¥%(minimum)s。")),
    "bid_invalid": (400, gettext_noop("出价必须大于零。")),
    "maximum_below_amount": (400, gettext_noop("代理上限不能低于本次出价 ¥%(amount)s。")),
    "already_leading": (
        400,
        gettext_noop("您已领先。如需提高代理上限，请输入高于当前上限 ¥%(maximum)s 的金额。"),
    ),
    "auction_closed": (409, gettext_noop("交易已截止。")),
    "auction_not_started": (409, gettext_noop("交易尚未开始，开始时间：%(at)s。")),
    "not_on_sale": (409, gettext_noop("此标的当前没有进行中的交易。")),
    "wrong_mode": (409, gettext_noop("此标的的交易方式不支持该操作。")),
    "buy_now_unavailable": (409, gettext_noop("此标的现在不能一口价成交。")),
    "sold_out": (409, gettext_noop("已售罄。")),
    "quantity_invalid": (400, gettext_noop("购买数量必须大于零。")),
    "quantity_exceeds_remaining": (409, gettext_noop("购买数量超过剩余数量 %(remaining)s。")),
    "quantity_below_minimum": (400, gettext_noop("购买数量不能少于最小购买量 %(minimum)s。")),
    "not_eligible": (403, gettext_noop("%(reason)s")),
    "blacklisted": (403, gettext_noop("贵单位已被列入交易黑名单，不能参与交易。")),
    "own_lot": (403, gettext_noop("不能参与本单位标的的交易。")),
    "licence_missing": (
        403,
        gettext_noop(
            "此标的为危险废物（%(hw)s），需要在提货日期 %(date)s 有效、经营类别包含 %(hw)s 的危险废物经营许可证。"
        ),
    ),
    "province_restricted": (403, gettext_noop("卖方只接受以下省份的竞买人：%(provinces)s。")),
    "credit_too_low": (403, gettext_noop("卖方要求竞买人信用分不低于 %(minimum)s，贵单位当前为 %(score)s。")),
    "deposit_required": (403, gettext_noop("请先缴纳保证金 ¥%(amount)s，经确认到账后才能出价。")),
}


class TradeRefused(Refusal):
    """A trading rule refused the request: a 4xx with a stable code and a message in the user's language."""

    REFUSALS = REFUSALS

    @staticmethod
    def display(value):
        return _display(value)


def _display(value):
    if isinstance(value, datetime):
        return localize(timezone.localtime(value))
    if isinstance(value, Decimal):
        return _yuan(value) if value.as_tuple().exponent == -2 else number_format(value, force_grouping=True)
    return value


def _refused(exc: engine.Refused) -> TradeRefused:
    return TradeRefused(exc.code, **exc.params)


# --- eligibility ----------------------------------------------------------------------------


def eligibility_check(
    sale: Sale, organisation: Organisation, *, deposit: Deposit | None = None, need_deposit=True
):
    """Every rule a bidder must pass, checked on the server at every bid, buy and offer."""
    lot = sale.lot
    if organisation.pk == lot.seller_id:
        raise TradeRefused("own_lot")
    if organisation.is_blacklisted:
        raise TradeRefused("blacklisted")
    if not organisation.is_recycler:
        raise TradeRefused("not_eligible", reason=_("只有回收利用单位可以参与竞买。"))
    if not organisation.is_verified:
        raise TradeRefused(
            "not_eligible",
            reason=_("单位认证状态为“%(status)s”，通过认证后才能交易。")
            % {"status": organisation.get_status_display()},
        )
    if lot.hazardous:
        hw = lot.category.hw_code or ""
        if licence_valid_for(organisation, hw_code=hw or None, on=lot.pickup_by) is None:
            raise TradeRefused("licence_missing", hw=hw or _("危险废物"), date=lot.pickup_by.isoformat())
    if sale.allowed_provinces:
        province = f"{organisation.region_id[:2]}0000"
        if province not in sale.allowed_provinces:
            names = Region.objects.filter(code__in=sale.allowed_provinces).values_list("name", flat=True)
            raise TradeRefused("province_restricted", provinces="、".join(names))
    if sale.min_credit_score is not None and organisation.credit_score < sale.min_credit_score:
        raise TradeRefused("credit_too_low", minimum=sale.min_credit_score, score=organisation.credit_score)
    if need_deposit and sale.deposit_amount > 0 and (deposit is None or deposit.status != DepositStatus.PAID):
        raise TradeRefused("deposit_required", amount=sale.deposit_amount)


# --- configuring a sale ---------------------------------------------------------------------


def _dec(value, field: str, *, places: str = "0.01", required=False, positive=True) -> Decimal | None:
    if value in (None, ""):
        if required:
            raise ValidationError({field: ValidationError(_("此项为必填项。"), code="required")})
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError({field: ValidationError(_("请输入数字。"), code="invalid")}) from None
    if not number.is_finite() or (positive and number <= 0) or number < 0:
        raise ValidationError({field: ValidationError(_("必须大于零。"), code="not_positive")})
    return number.quantize(Decimal(places))


def _provinces(codes) -> list[str]:
    codes = sorted({str(c).strip() for c in (codes or []) if str(c).strip()})
    known = set(
        Region.objects.filter(code__in=codes, level=RegionLevel.PROVINCE).values_list("code", flat=True)
    )
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise ValidationError(
            {"allowed_provinces": ValidationError(
                _("不是省级行政区划代码：%(codes)s") % {"codes": "、".join(unknown)}, code="invalid_region"
            )}
        )  # fmt: skip
    return codes


def sale_configure(
    *,
    actor,
    lot: Lot,
    mode: str,
    ends_at: datetime,
    starts_at: datetime | None = None,
    start_price=None,
    increment_amount=None,
    increment_percent=None,
    reserve_price=None,
    buy_now_price=None,
    fixed_price=None,
    min_quantity=None,
    min_bidders: int = 2,
    deposit_amount=None,
    allowed_provinces=(),
    min_credit_score: int | None = None,
    max_closes_at: datetime | None = None,
    extend_window_s: int = 300,
    extend_by_s: int = 300,
    ip=None,
) -> Sale:
    """The seller chooses how a lot is sold. Terms may change until the first bid or deposit."""
    seller_require(actor, lot.seller)
    if mode not in TradeMode.values:
        raise ValidationError({"mode": ValidationError(_("交易方式无效。"), code="invalid_choice")})
    now = timezone.now()
    starts_at = starts_at or now
    errors: dict[str, ValidationError] = {}
    if ends_at <= now:
        errors["ends_at"] = ValidationError(_("截止时间必须晚于现在。"), code="date_past")
    elif ends_at <= starts_at:
        errors["ends_at"] = ValidationError(_("截止时间必须晚于开始时间。"), code="date_order")
    values = {
        "start_price": _dec(start_price, "start_price", required=mode == TradeMode.AUCTION),
        "increment_amount": _dec(increment_amount, "increment_amount"),
        "increment_percent": _dec(increment_percent, "increment_percent"),
        "reserve_price": _dec(reserve_price, "reserve_price"),
        "buy_now_price": _dec(buy_now_price, "buy_now_price"),
        "fixed_price": _dec(fixed_price, "fixed_price", required=mode == TradeMode.FIXED),
        "min_quantity": _dec(min_quantity, "min_quantity", places="0.001"),
        "deposit_amount": _dec(deposit_amount, "deposit_amount", positive=False) or Decimal("0.00"),
    }
    if mode == TradeMode.AUCTION:
        if bool(values["increment_amount"]) == bool(values["increment_percent"]):
            errors["increment_amount"] = ValidationError(
                _("请填写加价幅度：固定金额或百分比，二选一。"), code="increment_required"
            )
        if values["increment_percent"] and values["increment_percent"] > 50:
            errors["increment_percent"] = ValidationError(_("加价百分比不能超过 50%。"), code="too_large")
        start = values["start_price"] or Decimal(0)
        if values["reserve_price"] is not None and values["reserve_price"] < start:
            errors["reserve_price"] = ValidationError(_("保留价不能低于起拍价。"), code="below_start")
        if values["buy_now_price"] is not None and values["buy_now_price"] <= max(
            start, values["reserve_price"] or Decimal(0)
        ):
            errors["buy_now_price"] = ValidationError(_("一口价必须高于起拍价和保留价。"), code="below_start")
        if extend_window_s <= 0 or extend_by_s <= 0:
            errors["extend_window_s"] = ValidationError(_("延时设置必须大于零。"), code="not_positive")
        if max_closes_at is None:
            max_closes_at = ends_at + timedelta(seconds=settings.TRADING_MAX_EXTENSION_S)
        elif max_closes_at < ends_at:
            errors["max_closes_at"] = ValidationError(_("最晚截止时间不能早于截止时间。"), code="date_order")
    if mode == TradeMode.FIXED:
        minimum = values["min_quantity"] or lot.quantity
        if minimum > lot.quantity:
            errors["min_quantity"] = ValidationError(_("最小购买量不能超过标的数量。"), code="too_large")
        values["min_quantity"] = minimum
    if mode == TradeMode.TENDER and not (1 <= int(min_bidders or 0) <= 50):
        errors["min_bidders"] = ValidationError(_("最少有效投标人数应在 1 到 50 之间。"), code="invalid")
    if min_credit_score is not None and not (0 <= int(min_credit_score) <= 100):
        errors["min_credit_score"] = ValidationError(_("信用分在 0 到 100 之间。"), code="invalid")
    provinces = _provinces(allowed_provinces)
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        lot = Lot.objects.select_for_update().get(pk=lot.pk)
        if lot.status not in (LotStatus.DRAFT, LotStatus.SUBMITTED, LotStatus.PUBLISHED):
            raise ValidationError(
                _("“%(status)s”状态的标的不能设置交易方式。") % {"status": lot.get_status_display()},
                code="lot_not_open",
            )
        sale = Sale.objects.select_for_update().filter(lot=lot, status=SaleStatus.ACTIVE).first()
        if sale is not None and (
            sale.bid_count or sale.deposits.exists() or sale.offers.exists() or sale.awards.exists()
        ):
            raise ValidationError(
                _("已有人出价、报价或缴纳保证金，交易条件不能再修改。"), code="sale_has_bids"
            )
        if sale is None:  # a lot's sequence runs on across its sales: watchers never see it fall
            sale = Sale(lot=lot, created_by=actor, sequence=lot.sequence)
        sale.mode = mode
        for name, value in values.items():
            setattr(sale, name, value)
        sale.quantity_remaining = lot.quantity if mode == TradeMode.FIXED else None
        sale.min_bidders = int(min_bidders or 2)
        sale.allowed_provinces = provinces
        sale.min_credit_score = min_credit_score
        sale.starts_at, sale.ends_at, sale.closes_at = starts_at, ends_at, ends_at
        sale.max_closes_at = max_closes_at if mode == TradeMode.AUCTION else None
        sale.extend_window_s, sale.extend_by_s = extend_window_s, extend_by_s
        sale.current_price = None
        sale.sequence += 1
        sale.save()
        audit_record(
            actor=actor, action="sale.configure", target=sale, to_state=sale.status, ip=ip,
            data={"mode": mode, "lot": lot.pk},
        )  # fmt: skip
        price = sale.fixed_price if mode == TradeMode.FIXED else sale.start_price
        lot_market_update(
            lot_id=lot.pk, reindex=lot.status == LotStatus.PUBLISHED, trade_mode=mode, current_price=price,
            closes_at=sale.closes_at, bid_count=0, sequence=sale.sequence,
        )  # fmt: skip
        _after_change(sale)
    return sale


# --- live state and side effects ------------------------------------------------------------


def _after_change(sale: Sale, *, event: str = "state", bids=(), **known) -> None:
    """After commit: the new public state to the lot's watchers, with the public bid rows of this
    change (so pages extend their history without asking); a close scheduled if it is near. The
    message is built after the commit too, out of the sale's lock."""
    from market.trading.selectors import sale_public_state

    bids = [b for b in bids if b.kind != BidKind.RAISE] if not sale.is_sealed else None

    def message() -> dict:
        built = {"type": "state", "event": event, "state": sale_public_state(sale, **known)}
        if bids is not None:
            built["bids"] = [
                {
                    "sequence": b.sequence,
                    "bidder": b.bidder.label,
                    "amount": str(b.amount),
                    "kind": b.kind,
                    "created_at": b.created_at.isoformat(),
                }
                for b in bids
            ]
        return built

    fanout_publish_on_commit(f"lot.{sale.lot_id}", message)
    if sale.status == SaleStatus.ACTIVE:
        from market.trading.tasks import sale_close_schedule

        closes_at = sale.closes_at
        transaction.on_commit(lambda: sale_close_schedule(sale.pk, closes_at), robust=True)


def _lot_url(lot_id: int) -> str:
    return reverse("frontend:lot", args=[lot_id])


_LOT_TEXTS = (
    "lot__description", "lot__specs", "lot__search_tokens", "lot__status_reason",
    "lot__category__description", "lot__category__spec_schema", "lot__category__aliases",
)  # fmt: skip


def _sale_locked(lot):
    """The lot's active sale, locked, with its lot and category (not their long texts)."""
    return (
        Sale.objects.select_for_update(of=("self",))
        .select_related("lot", "lot__category")
        .defer(*_LOT_TEXTS)  # read under the lock: no long texts nobody here uses
        .filter(lot_id=lot, status=SaleStatus.ACTIVE)
        .order_by("pk")
    )


# The bid path's reads, compiled once (market.core.prepared): compiling them cost more than running.
_SALE_FOR_UPDATE = Prepared(lambda lot: _sale_locked(lot)[:1], lot=int)


# The same lock, taken only when a challenger's bid is above the price: a sale whose price has
# reached the bid is not locked at all. On a busy lot the bids sent on the same minimum queue for
# the lock together; when the first one commits, PostgreSQL checks the others' condition again on
# the new row and hands them no row instead of the lock, so they are refused without holding it
# one after the other.
_SALE_FOR_UPDATE_ABOVE = Prepared(
    lambda lot, amount, organisation: _sale_locked(lot).filter(
        Q(current_price__isnull=True) | Q(current_price__lt=amount) | Q(leader_id=organisation)
    )[:1],
    lot=int,
    amount=Decimal,
    organisation=int,
)


def _sale_for_update(lot_id: int) -> Sale:
    sale = _SALE_FOR_UPDATE.first(lot=int(lot_id))
    if sale is None:
        raise TradeRefused("not_on_sale")
    return sale


def _sale_for_bid(checked: BidChecked) -> Sale | TradeRefused:
    """The sale locked for a bid, or the refusal of a bid that the price has already reached.

    A challenger's bid at or below the current price is too low now and on every later state (the
    price never falls; only the leader may bid it again), so the lock is asked for only when the
    bid is above it (``_SALE_FOR_UPDATE_ABOVE``). When none is handed over, the committed state
    says why: too low (the refusal is returned, with the minimum, nothing having been written or
    locked), or anything else, decided under the lock as before."""
    amount, maximum = checked.amount, checked.maximum
    if not checked.auction or amount <= 0 or (maximum is not None and maximum < amount):
        return _sale_for_update(checked.lot_id)
    lot_id, organisation = int(checked.lot_id), checked.organisation
    sale = _SALE_FOR_UPDATE_ABOVE.first(lot=lot_id, amount=amount, organisation=organisation.pk)
    if sale is not None:
        return sale
    try:
        _too_low_before_the_lock(lot_id, organisation, amount, maximum)
    except TradeRefused as refusal:
        refusal.nothing_written = True
        return refusal
    return _sale_for_update(lot_id)


def _open_check(sale: Sale, now: datetime) -> None:
    if sale.lot.status != LotStatus.PUBLISHED:
        raise TradeRefused("not_on_sale")
    if now < sale.starts_at:
        raise TradeRefused("auction_not_started", at=sale.starts_at)
    if now >= sale.closes_at:
        raise TradeRefused("auction_closed")


def _deposit_for_update(sale: Sale, organisation: Organisation) -> Deposit | None:
    if sale.deposit_amount <= 0:
        return None
    return Deposit.objects.select_for_update().filter(sale=sale, organisation=organisation).first()


def _bidder(sale: Sale, organisation_id: int) -> Bidder:
    bidder = Bidder.objects.filter(sale=sale, organisation_id=organisation_id).first()
    if bidder is None:
        bidder = Bidder.objects.create(
            sale=sale, organisation_id=organisation_id, label_index=sale.bidder_count
        )
        sale.bidder_count += 1
    return bidder


def rules_of(sale: Sale) -> engine.Rules:
    return engine.Rules(
        start_price=sale.start_price or Decimal("0.01"),
        increment_amount=sale.increment_amount,
        increment_percent=sale.increment_percent,
        reserve=sale.reserve_price,
        buy_now=sale.buy_now_price,
        extend_window=timedelta(seconds=sale.extend_window_s),
        extend_by=timedelta(seconds=sale.extend_by_s),
        max_closes_at=sale.max_closes_at,
    )


def state_of(sale: Sale) -> engine.AuctionState:
    leader = None
    if sale.leader_id is not None:
        leader = engine.Proxy(sale.leader_id, sale.leader_maximum, sale.leader_order)
    return engine.AuctionState(closes_at=sale.closes_at, price=sale.current_price, leader=leader)


def _state_write(sale: Sale, state: engine.AuctionState) -> None:
    sale.current_price = state.price
    sale.closes_at = state.closes_at
    if state.leader is not None:
        sale.leader_id, sale.leader_maximum, sale.leader_order = (
            state.leader.bidder, state.leader.maximum, state.leader.order,
        )  # fmt: skip


# --- bidding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidChecked:
    """A bid as checked before the sale's lock (``bid_check``)."""

    organisation: Organisation
    lot_id: int
    amount: Decimal
    maximum: Decimal | None
    known_bidder: Bidder | None
    auction: bool = False  # the sale read was a live auction's
    on_sale: bool = False  # a sale was taking bids on a published lot
    leading: bool = False  # the bidder led the sale as read (a retry of their accepted bid, often)


def bid_check(*, actor, organisation: Organisation, lot_id: int, amount, maximum=None) -> BidChecked:
    """What a bid can be told before the sale's lock, from committed rows: the membership (its
    organisation read now: fresh status and blacklist), the amounts, and a price that has already
    moved past the bid (``bid_too_low``, most refusals on a busy lot). Reads only: run outside a
    transaction, a refusal here rolls nothing back (a rollback also drops the connection's
    prepared statements)."""
    organisation = member_require(actor, organisation, trade=True).organisation
    amount = _dec(amount, "amount", required=True, positive=False)
    maximum = _dec(maximum, "maximum", positive=False)
    snapshot = _too_low_before_the_lock(lot_id, organisation, amount, maximum, with_bidder=True)
    known_bidder = _bidder_read(snapshot, organisation.pk) if snapshot else None
    auction = snapshot is not None and snapshot.mode == TradeMode.AUCTION
    on_sale = snapshot is not None and snapshot.lot_status == LotStatus.PUBLISHED
    leading = snapshot is not None and snapshot.leader_id == organisation.pk
    return BidChecked(organisation, lot_id, amount, maximum, known_bidder, auction, on_sale, leading)


def bid_place(
    *, actor, organisation: Organisation, lot_id: int, amount=None, maximum=None, ip=None,
    checked: BidChecked | None = None, savepoint: bool = True,
) -> dict:  # fmt: skip
    """One bid in one transaction: lock the sale, check the clock and the bidder, apply the rules,
    insert the bid rows, bump the sequence. Returns what the bidder sees next.

    The sale's lock is the floor's bottleneck (every bid on a lot waits for it), so what does not
    depend on the locked state is read before it (``bid_check``: the membership, the bidder's row;
    ``checked`` when the caller ran it already), a bid the price has already reached does not take
    it (``_sale_for_bid``: that refusal leaves the transaction as it found it, committed rather than
    rolled back, and says so with ``nothing_written``), and what only mirrors it is written after
    the commit (the lot's market columns, guarded by the sequence; the search counts' generation;
    notices).

    ``savepoint=False``: a caller whose own transaction is rolled back whenever this raises (the
    API's ``idempotent``) spares the two statements of a savepoint while the lock is held."""
    if checked is None:
        checked = bid_check(
            actor=actor, organisation=organisation, lot_id=lot_id, amount=amount, maximum=maximum
        )
    elif checked.lot_id != lot_id:
        raise ValueError("the bid was checked for another lot")
    with transaction.atomic(savepoint=savepoint):
        sale = _sale_for_bid(checked)
        if isinstance(sale, TradeRefused):
            refusal = sale
        else:
            return _bid_locked(sale, checked, actor=actor, ip=ip)
    raise refusal


def _bid_locked(sale: Sale, checked: BidChecked, *, actor, ip) -> dict:
    """``bid_place`` under the sale's lock."""
    organisation, amount, maximum = checked.organisation, checked.amount, checked.maximum
    known_bidder = checked.known_bidder
    now = timezone.now()
    _open_check(sale, now)
    deposit = _deposit_for_update(sale, organisation)
    eligibility_check(sale, organisation, deposit=deposit)
    if sale.mode == TradeMode.TENDER:
        return _tender_bid(sale, organisation, actor=actor, amount=amount, ip=ip)
    if sale.mode != TradeMode.AUCTION:
        raise TradeRefused("wrong_mode")
    try:
        outcome = engine.bid_apply(
            rules_of(sale), state_of(sale), bidder=organisation.pk, amount=amount, maximum=maximum,
            order=sale.sequence + 1, now=now,
        )  # fmt: skip
    except engine.Refused as exc:
        raise _refused(exc) from None
    if known_bidder is not None and known_bidder.sale_id == sale.pk:
        bidder = known_bidder
    else:
        bidder = _bidder(sale, organisation.pk)
    raised = _bidder_maximum_raise(bidder, maximum or amount)
    bidders = {organisation.pk: bidder}
    rows = _steps_write(
        sale, outcome, actor=actor, acting_org=organisation.pk, ip=ip, known=bidders, also=[raised] if raised else []
    )  # fmt: skip
    leader = bidders.get(sale.leader_id)
    leader_label = leader.label if leader is not None else _UNKNOWN
    _after_change(sale, event="extended" if outcome.extended else "bid", bids=rows, **_known(leader_label))
    # The lot's market columns and the notices are written after commit: nothing else waits on
    # the sale's lock (the live message, registered before, goes out first).
    market = _lot_market_fields(sale)
    transaction.on_commit(
        lambda: _after_bid(sale, outcome, bidder_org=organisation.pk, market=market), robust=True
    )
    if outcome.extended:
        audit_record(
            actor=None, action="sale.extend", target=sale, data={"closes_at": sale.closes_at.isoformat()}
        )
    from market.trading.selectors import sale_state_for

    return sale_state_for(sale, organisation, bidder=bidder, deposit=deposit, **_known(leader_label))


_SNAPSHOT_FIELDS = (
    "lot_id", "mode", "status", "starts_at", "closes_at", "max_closes_at", "start_price",
    "increment_amount", "increment_percent", "reserve_price", "buy_now_price", "extend_window_s",
    "extend_by_s", "current_price", "leader_id", "leader_maximum", "leader_order",
)  # fmt: skip


def _snapshot(lot):
    return (
        Sale.objects.filter(lot_id=lot, status=SaleStatus.ACTIVE)
        .only(*_SNAPSHOT_FIELDS)
        .annotate(seller_id=F("lot__seller_id"), lot_status=F("lot__status"))
        .order_by("pk")
    )


_SNAPSHOT = Prepared(lambda lot: _snapshot(lot)[:1], lot=int)
# The same with the organisation's bidder row of the sale, if it has one (a bid's check reads both:
# one round trip).
_BIDDER_FIELDS = ("id", "label_index", "maximum", "created_at")
_SNAPSHOT_AND_BIDDER = Prepared(
    lambda lot, organisation: (
        _snapshot(lot)
        .annotate(mine=FilteredRelation("bidders", condition=Q(bidders__organisation_id=organisation)))
        .annotate(**{f"mine_{name}": F(f"mine__{name}") for name in _BIDDER_FIELDS})[:1]
    ),
    lot=int,
    organisation=int,
)


def _bidder_read(snapshot: Sale, organisation_id: int) -> Bidder | None:
    """The bidder row read with the snapshot (``_SNAPSHOT_AND_BIDDER``), as the ORM would load it."""
    if snapshot.mine_id is None:
        return None
    read = {name: getattr(snapshot, f"mine_{name}") for name in _BIDDER_FIELDS}
    read.update(sale_id=snapshot.pk, organisation_id=organisation_id)
    fields = [f.attname for f in Bidder._meta.concrete_fields]
    return Bidder.from_db(snapshot._state.db, fields, [read[name] for name in fields])


def _too_low_before_the_lock(
    lot_id: int, organisation: Organisation, amount, maximum, *, with_bidder: bool = False
) -> Sale | None:
    """On a busy lot most late bids are below a minimum that has already moved on. Such a bid is
    refused from the committed state, without queueing for the sale's lock: the price never falls,
    so the lock would refuse it too (``engine.too_low``). Only for a bidder whom the organisation's
    own rules let bid; anything else is decided under the lock. Returns the sale as read (with the
    organisation's bidder row in ``mine_*`` when ``with_bidder``: ``_bidder_read``)."""
    if with_bidder:
        snapshot = _SNAPSHOT_AND_BIDDER.first(lot=int(lot_id), organisation=organisation.pk)
    else:
        snapshot = _SNAPSHOT.first(lot=int(lot_id))
    if snapshot is None or snapshot.mode != TradeMode.AUCTION or snapshot.lot_status != LotStatus.PUBLISHED:
        return snapshot
    now = timezone.now()
    if not (snapshot.starts_at <= now < snapshot.closes_at) or snapshot.seller_id == organisation.pk:
        return snapshot
    if organisation.is_blacklisted or not (organisation.is_recycler and organisation.is_verified):
        return snapshot
    floor = engine.too_low(
        rules_of(snapshot), state_of(snapshot), bidder=organisation.pk, amount=amount, maximum=maximum
    )
    if floor is not None:
        raise TradeRefused("bid_too_low", minimum=floor)
    return snapshot


def _bidder_maximum_raise(bidder: Bidder, authorised: Decimal) -> Statement | None:
    """The bidder's standing maximum (private to them) only ever rises. The row may have been read
    before the sale's lock: the update keeps the greater of the stored and the new value, and is
    needed only when the new one is greater than what was read. Returns it, to be run with the
    bid's rows (an update statement, see ``_steps_write``), or None; the maximum in memory is
    raised at once."""
    if bidder.maximum is not None and authorised <= bidder.maximum:
        return None
    bidder.maximum = authorised if bidder.maximum is None else max(bidder.maximum, authorised)
    return row_update_statement(Bidder, bidder.pk, {}, at_least={"maximum": authorised})


def _lot_market_fields(sale: Sale) -> dict:
    return {
        "current_price": sale.current_price,
        "closes_at": sale.closes_at,
        "bid_count": sale.bid_count,
        "sequence": sale.sequence,
    }


def _after_bid(sale: Sale, outcome: engine.Outcome, *, bidder_org: int, market: dict) -> None:
    """After a bid's commit, in one transaction of their own: the lot's denormalised market columns
    (lists and search show them; an older update arriving late never overwrites a newer one) and the
    outbid and proxy notices; their emails and live messages after its commit.

    That transaction is sent in one round trip and commits asynchronously (``execute_many_async``):
    it only follows the bid, whose own commit is durable. It was never atomic with the bid (a crash
    between the two commits leaves the mirror behind until the sale's next change, and the notices
    unsent), and an asynchronous commit lost with the database server adds nothing to that; it
    spares a bid a second wait for the disk, and four round trips."""
    mirror = lot_market_statement(lot_id=sale.lot_id, newer_than=sale.sequence, **market)
    try:
        execute_many_async([mirror, *_after_bid_notices(sale, outcome, bidder_org=bidder_org)])
    except Exception:
        logger.exception("sale %s: notices of bid %s not written", sale.pk, sale.sequence)
        # Notices that fail keep the market columns: written again alone.
        execute_many_async([mirror])


_UNKNOWN = object()


def _known(leader_label) -> dict:
    return {} if leader_label is _UNKNOWN else {"leader_label": leader_label}


_SALE_BID_FIELDS = (
    "current_price", "closes_at", "leader", "leader_maximum", "leader_order", "bid_count", "bidder_count",
    "sequence",
)  # fmt: skip


def _steps_write(sale: Sale, outcome: engine.Outcome, *, actor, acting_org: int, ip, known=None, also=()):
    """The outcome's bid rows, the sale's new state and ``also`` (updates of other rows, as
    update statements) written in one statement: every round trip under the sale's lock is
    one that every other bidder on the lot waits for (``market.core.statements``)."""
    rows, updates = _steps_changes(
        sale, outcome, actor=actor, acting_org=acting_org, ip=ip, known=known, also=also
    )
    *_, sale_rows = insert_with_updates(rows, updates)
    if sale_rows != 1:  # as ``save(update_fields=...)`` refuses to change nothing
        raise DatabaseError(f"sale {sale.pk}: its row was not updated")
    return rows


def _steps_changes(sale: Sale, outcome: engine.Outcome, *, actor, acting_org: int, ip, known=None, also=()):
    """The outcome's bid rows (not saved) and the updates ``_steps_write`` sends with them: ``also``,
    then the sale's new state (applied to ``sale`` in memory now)."""
    rows = _steps_rows(sale, outcome.steps, actor=actor, acting_org=acting_org, ip=ip, known=known)
    _state_write(sale, outcome.state)
    fields = {name: getattr(sale, Sale._meta.get_field(name).attname) for name in _SALE_BID_FIELDS}
    return rows, [*also, row_update_statement(Sale, sale.pk, fields)]


def _steps_rows(sale: Sale, steps, *, actor, acting_org: int, ip, known=None) -> list[Bid]:
    """The steps' bid rows, not saved. ``known``: bidders already loaded in this transaction, by
    organisation (saves a query each); filled with those loaded here."""
    rows = []
    bidders = known if known is not None else {}
    for step in steps:
        if step.bidder not in bidders:
            bidders[step.bidder] = _bidder(sale, step.bidder)
        bidder = bidders[step.bidder]
        sale.sequence += 1
        if step.kind != engine.RAISE:
            sale.bid_count += 1
        rows.append(
            Bid(
                sale=sale,
                bidder=bidder,
                organisation_id=step.bidder,
                user=actor if step.bidder == acting_org and step.kind != engine.PROXY else None,
                amount=step.amount,
                maximum=step.maximum,
                kind=step.kind,
                sequence=sale.sequence,
                ip=ip if step.bidder == acting_org else None,
            )
        )
    return rows


def _after_bid_notices(sale: Sale, outcome: engine.Outcome, *, bidder_org: int) -> list[Statement]:
    """The notices of a bid, compiled (``notify_users_statement``): outbid, and a proxy used."""
    told = {"title": sale.lot.title, "price": _yuan(outcome.state.price)}
    notices = []

    def tell(organisation_id: int, title: str, kind: str, email: bool = True) -> None:
        notices.append(
            notify_users_statement(
                trading_members_sql(organisation_id),
                title=title % told,
                url=_lot_url(sale.lot_id),
                kind=kind,
                email=email,
            )
        )

    if outcome.outbid is not None:
        tell(outcome.outbid, _("您在“%(title)s”的出价已被超过，当前价 ¥%(price)s。"), "outbid")
    leader = outcome.state.leader
    if (
        leader is not None
        and leader.bidder != bidder_org
        and any(s.kind == engine.PROXY for s in outcome.steps)
    ):
        tell(
            leader.bidder,
            _("您在“%(title)s”的代理出价已自动加价至 ¥%(price)s，仍然领先。"),
            "proxy_used",
            email=False,
        )
    return [n for n in notices if n is not None]


def _tender_bid(sale: Sale, organisation: Organisation, *, actor, amount: Decimal, ip) -> dict:
    """A sealed bid: one per bidder, revisable until the close (a revision is a new row)."""
    if amount <= 0:
        raise TradeRefused("bid_invalid")
    if sale.start_price is not None and amount < sale.start_price:
        raise TradeRefused("bid_too_low", minimum=sale.start_price)
    bidder = _bidder(sale, organisation.pk)
    first = not Bid.objects.filter(sale=sale, bidder=bidder).exists()
    sale.sequence += 1
    if first:
        sale.bid_count += 1
    Bid.objects.create(
        sale=sale, bidder=bidder, organisation=organisation, user=actor, amount=amount,
        kind=BidKind.TENDER, sequence=sale.sequence, ip=ip,
    )  # fmt: skip
    sale.save(update_fields=["bid_count", "bidder_count", "sequence"])
    lot_market_update(lot_id=sale.lot_id, bid_count=sale.bid_count, sequence=sale.sequence)
    _after_change(sale, event="bid")
    from market.trading.selectors import sale_state_for

    return sale_state_for(sale, organisation)


# --- buying outright ------------------------------------------------------------------------


def buy(*, actor, organisation: Organisation, lot_id: int, quantity=None, ip=None) -> Award:
    """Fixed price (part or all of what remains) or an auction's buy-now price."""
    member_require(actor, organisation, trade=True)
    with transaction.atomic():
        sale = _sale_for_update(lot_id)
        now = timezone.now()
        _open_check(sale, now)
        organisation = Organisation.objects.get(pk=organisation.pk)
        deposit = _deposit_for_update(sale, organisation)
        eligibility_check(sale, organisation, deposit=deposit)
        lot = sale.lot
        if sale.mode == TradeMode.FIXED:
            qty = _dec(quantity, "quantity", places="0.001", required=True, positive=False)
            try:
                qty = engine.fixed_take(
                    remaining=sale.quantity_remaining, minimum=sale.min_quantity, quantity=qty
                )
            except engine.Refused as exc:
                raise _refused(exc) from None
            sale.quantity_remaining -= qty
            sale.sequence += 1
            sale.bid_count += 1
            bidder = _bidder(sale, organisation.pk)
            sale.save(update_fields=["quantity_remaining", "sequence", "bid_count", "bidder_count"])
            award = _award_create(
                sale,
                source=AwardSource.FIXED,
                buyer_id=organisation.pk,
                quantity=qty,
                unit_price=sale.fixed_price,
            )
            audit_record(
                actor=actor,
                action="sale.buy",
                target=sale,
                ip=ip,
                data={"award": award.pk, "bidder": bidder.pk},
            )
            lot_market_update(lot_id=lot.pk, bid_count=sale.bid_count, sequence=sale.sequence)
            if sale.quantity_remaining <= 0:
                _sale_end(sale, sold=True, reason="")
            else:
                _after_change(sale, event="bid")
            return award
        if sale.mode != TradeMode.AUCTION:
            raise TradeRefused("wrong_mode")
        try:
            outcome = engine.buy_now_apply(rules_of(sale), state_of(sale), bidder=organisation.pk, now=now)
        except engine.Refused as exc:
            raise _refused(exc) from None
        bids = _steps_write(sale, outcome, actor=actor, acting_org=organisation.pk, ip=ip)
        award = _award_create(
            sale, source=AwardSource.BUY_NOW, buyer_id=organisation.pk, quantity=lot.quantity,
            unit_price=outcome.state.price, bid=bids[-1],
        )  # fmt: skip
        execute_many(_after_bid_notices(sale, outcome, bidder_org=organisation.pk))
        _sale_end(sale, sold=True, reason="", winner_id=organisation.pk)
        return award


# --- quotations -----------------------------------------------------------------------------


def lot_offer_create(
    *, actor, organisation: Organisation, lot_id: int, quantity, unit_price, message="", ip=None
):
    """A buyer quotes a price for a lot offered by request for quotation."""
    member_require(actor, organisation, trade=True)
    qty = _dec(quantity, "quantity", places="0.001", required=True)
    price = _dec(unit_price, "unit_price", required=True)
    with transaction.atomic():
        sale = _sale_for_update(lot_id)
        _open_check(sale, timezone.now())
        if sale.mode != TradeMode.QUOTATION:
            raise TradeRefused("wrong_mode")
        organisation = Organisation.objects.get(pk=organisation.pk)
        eligibility_check(sale, organisation, deposit=_deposit_for_update(sale, organisation))
        if qty > sale.lot.quantity:
            raise ValidationError(
                {"quantity": ValidationError(_("数量不能超过标的数量。"), code="too_large")}
            )
        sale.offers.filter(buyer=organisation, status=LotOfferStatus.OPEN).update(
            status=LotOfferStatus.WITHDRAWN
        )
        offer = LotOffer.objects.create(
            sale=sale,
            buyer=organisation,
            created_by=actor,
            quantity=qty,
            unit_price=price,
            message=message or "",
        )
        _bidder(sale, organisation.pk)
        sale.sequence += 1
        sale.bid_count = sale.offers.filter(status=LotOfferStatus.OPEN).count()
        sale.save(update_fields=["sequence", "bid_count", "bidder_count"])
        lot_market_update(lot_id=sale.lot_id, bid_count=sale.bid_count, sequence=sale.sequence)
        audit_record(actor=actor, action="offer.create", target=sale, ip=ip, data={"offer": offer.pk})
        _after_change(sale, event="offer")
        notify_users(
            trading_members(sale.lot.seller_id),
            title=_("“%(title)s”收到新报价：¥%(price)s/%(unit)s")
            % {"title": sale.lot.title, "price": _yuan(price), "unit": sale.lot.get_unit_display()},
            url=_lot_url(sale.lot_id), kind="offer",
        )  # fmt: skip
    return offer


def lot_offer_accept(*, actor, offer: LotOffer, ip=None) -> Award:
    """The seller accepts one quotation: the award is made and the sale ends."""
    seller_require(actor, offer.sale.lot.seller)
    with transaction.atomic():
        sale = Sale.objects.select_for_update().select_related("lot", "lot__category").get(pk=offer.sale_id)
        offer = LotOffer.objects.select_for_update().get(pk=offer.pk)
        if sale.status != SaleStatus.ACTIVE:
            raise TradeRefused("not_on_sale")
        if offer.status != LotOfferStatus.OPEN:
            raise ValidationError(
                _("该报价已是“%(status)s”状态。") % {"status": offer.get_status_display()},
                code="offer_not_open",
            )
        # The buyer may have lost eligibility since quoting (suspended, licence expired, ...).
        eligibility_check(sale, offer.buyer, deposit=_deposit_for_update(sale, offer.buyer))
        offer.status = LotOfferStatus.ACCEPTED
        offer.save(update_fields=["status"])
        award = _award_create(
            sale, source=AwardSource.LOT_OFFER, buyer_id=offer.buyer_id, quantity=offer.quantity,
            unit_price=offer.unit_price, lot_offer=offer,
        )  # fmt: skip
        audit_record(actor=actor, action="offer.accept", target=sale, ip=ip, data={"offer": offer.pk})
        _sale_end(sale, sold=True, reason="", winner_id=offer.buyer_id)
    return award


def wanted_offer_award(*, actor, offer: WantedOffer, ip=None) -> Award:
    """The recycler accepts a seller's answer to its wanted listing: the award is made at once."""
    buyer = offer.wanted.buyer
    buyer_require(actor, buyer)
    with transaction.atomic():
        offer = wanted_offer_accept(actor=actor, offer=offer, ip=ip)
        wanted = offer.wanted
        if offer.seller.is_blacklisted or not offer.seller.is_verified:
            raise TradeRefused("not_eligible", reason=_("报价方当前不能交易。"))
        if (
            wanted.category.hazardous
            and licence_valid_for(buyer, hw_code=wanted.category.hw_code or None, on=timezone.localdate())
            is None
        ):
            raise TradeRefused(
                "licence_missing",
                hw=wanted.category.hw_code or _("危险废物"),
                date=timezone.localdate().isoformat(),
            )
        award = Award.objects.create(
            wanted_offer=offer, lot=offer.lot, source=AwardSource.WANTED_OFFER, seller_id=offer.seller_id,
            buyer_id=buyer.pk, category=wanted.category, quantity=offer.quantity, unit=wanted.unit,
            unit_price=offer.unit_price, amount=award_amount(offer.quantity, offer.unit_price),
        )  # fmt: skip
        audit_record(actor=actor, action="award.create", target=award, ip=ip, data={"wanted_offer": offer.pk})
        award_created.send(sender=Award, award=award)
        _award_notify(award, title=wanted.title, url=reverse("frontend:wanted_detail", args=[wanted.pk]))
    return award


# --- deposits -------------------------------------------------------------------------------


def deposit_create(*, actor, organisation: Organisation, lot_id: int, ip=None) -> Deposit:
    """A bidder asks to pay the deposit by bank transfer; an operator confirms it on arrival."""
    member_require(actor, organisation, trade=True)
    with transaction.atomic():
        sale = _sale_for_update(lot_id)
        if sale.deposit_amount <= 0:
            raise ValidationError(_("此标的无需缴纳保证金。"), code="deposit_not_needed")
        if timezone.now() >= sale.closes_at:
            raise TradeRefused("auction_closed")
        organisation = Organisation.objects.get(pk=organisation.pk)
        eligibility_check(sale, organisation, need_deposit=False)
        deposit = Deposit.objects.select_for_update().filter(sale=sale, organisation=organisation).first()
        if deposit is not None:
            return deposit
        deposit = Deposit.objects.create(
            sale=sale, organisation=organisation, amount=sale.deposit_amount, created_by=actor
        )
        deposit.reference = f"BZJ{deposit.pk:08d}"
        deposit.save(update_fields=["reference"])
        audit_record(actor=actor, action="deposit.create", target=deposit, to_state=deposit.status, ip=ip)
    return deposit


def _deposit_move(deposit: Deposit, to: str, *, actor, action: str, reason: str = "", ip=None) -> Deposit:
    from_state = deposit.status
    now = timezone.now()
    extra = []
    if to == DepositStatus.PAID:
        deposit.paid_at = now
        extra.append("paid_at")
    else:
        deposit.settled_at = now
        extra.append("settled_at")
    transition(
        deposit, field="status", to=to, table=DEPOSIT_TRANSITIONS, actor=actor, action=action,
        reason=reason, ip=ip, extra_fields=extra,
    )  # fmt: skip
    deposit_moved.send(sender=Deposit, deposit=deposit, from_state=from_state, to_state=to)
    return deposit


def deposit_settle(
    *, deposit_id: int, to: str, actor=None, reason: str = "", reference: str = "", ip=None
) -> Deposit:
    """Move a deposit for settlement (deals): paid online, applied to the price, forfeited on a
    default. Locks the sale, then the deposit; moving it to where it already is changes nothing."""
    with transaction.atomic():
        sale_id = Deposit.objects.filter(pk=deposit_id).values_list("sale_id", flat=True).get()
        Sale.objects.select_for_update().filter(pk=sale_id).first()
        deposit = Deposit.objects.select_for_update().select_related("sale").get(pk=deposit_id)
        if deposit.status == to:
            return deposit
        if reference:
            deposit.reference = reference[:64]
            deposit.save(update_fields=["reference"])
        action = {
            DepositStatus.PAID: "deposit.paid",
            DepositStatus.APPLIED: "deposit.apply",
            DepositStatus.FORFEITED: "deposit.forfeit",
            DepositStatus.RELEASED: "deposit.release",
        }[to]
        return _deposit_move(deposit, to, actor=actor, action=action, reason=reason, ip=ip)


def deposit_confirm(*, actor, deposit: Deposit, reference: str = "", ip=None) -> Deposit:
    """An operator confirms that a bank-transfer deposit has arrived."""
    if not getattr(actor, "is_operator", False):
        raise PermissionDenied(_("只有平台运营人员可以确认保证金到账。"))
    with transaction.atomic():
        Sale.objects.select_for_update().filter(pk=deposit.sale_id).first()  # lot (sale) first, then deposit
        deposit = Deposit.objects.select_for_update().select_related("sale").get(pk=deposit.pk)
        if reference:
            deposit.reference = reference[:64]
            deposit.save(update_fields=["reference"])
        _deposit_move(deposit, DepositStatus.PAID, actor=actor, action="deposit.confirm", ip=ip)
        notify_users(
            trading_members(deposit.organisation_id),
            title=_("保证金 ¥%(amount)s 已确认到账，可以出价了。") % {"amount": _yuan(deposit.amount)},
            url=_lot_url(deposit.sale.lot_id), kind="deposit",
        )  # fmt: skip
    return deposit


# --- closing --------------------------------------------------------------------------------


def _award_create(sale: Sale, *, source: str, buyer_id: int, quantity, unit_price, bid=None, lot_offer=None):
    lot = sale.lot
    award = Award.objects.create(
        sale=sale, lot=lot, source=source, seller_id=lot.seller_id, buyer_id=buyer_id, category_id=lot.category_id,
        quantity=quantity, unit=lot.unit, unit_price=unit_price, amount=award_amount(quantity, unit_price),
        winning_bid=bid, lot_offer=lot_offer,
    )  # fmt: skip
    audit_record(actor=None, action="award.create", target=award, data={"sale": sale.pk, "source": source})
    award_created.send(sender=Award, award=award)
    _award_notify(award, title=lot.title, url=_lot_url(lot.pk))
    return award


def _award_notify(award: Award, *, title: str, url: str) -> None:
    params = {"title": title, "price": _yuan(award.unit_price), "amount": _yuan(award.amount)}
    notify_users(
        trading_members(award.buyer_id),
        title=_("恭喜！您已成交“%(title)s”，成交价 ¥%(price)s，金额 ¥%(amount)s。") % params,
        url=url, kind="won",
    )  # fmt: skip
    notify_users(
        trading_members(award.seller_id),
        title=_("“%(title)s”已成交，成交价 ¥%(price)s，金额 ¥%(amount)s。") % params,
        url=url, kind="sold",
    )  # fmt: skip


def _sale_end(sale: Sale, *, sold: bool, reason: str, winner_id: int | None = None) -> Sale:
    """Under the sale's lock: the final state, deposits released (all but the winner's), the lot
    closed (sold) or expired (unsold, so it can be relisted), watchers and bidders told."""
    now = timezone.now()
    sale.closed_at = now
    sale.fail_reason = "" if sold else reason
    sale.sequence += 1
    transition(
        sale, field="status", to=SaleStatus.CLOSED if sold else SaleStatus.FAILED, table=SALE_TRANSITIONS,
        actor=None, action="sale.close" if sold else "sale.fail", reason=reason,
        extra_fields=["closed_at", "fail_reason", "sequence", "closes_at", "current_price"],
    )  # fmt: skip
    deposits = Deposit.objects.select_for_update().filter(
        sale=sale, status__in=[DepositStatus.PENDING, DepositStatus.PAID]
    )
    for deposit in deposits.exclude(organisation_id=winner_id) if winner_id else deposits:
        _deposit_move(deposit, DepositStatus.RELEASED, actor=None, action="deposit.release")
    sale.offers.filter(status=LotOfferStatus.OPEN).update(status=LotOfferStatus.LAPSED)
    lot_trading_end(lot_id=sale.lot_id, sold=sold, reason="" if sold else str(FailReason(reason).label))
    lot_market_update(
        lot_id=sale.lot_id, current_price=sale.current_price, sequence=sale.sequence, reindex=True
    )
    _after_change(sale, event="closed")
    losers = set(
        Bidder.objects.filter(sale=sale)
        .exclude(organisation_id=winner_id)
        .values_list("organisation_id", flat=True)
    )
    title = sale.lot.title
    url = _lot_url(sale.lot_id)
    for org_id in losers:
        notify_users(
            trading_members(org_id),
            title=_("“%(title)s”已结束，您未成交。") % {"title": title}
            if sold else _("“%(title)s”未成交：%(reason)s") % {"title": title, "reason": FailReason(reason).label},
            url=url, kind="lost" if sold else "failed",
        )  # fmt: skip
    if not sold:
        notify_users(
            trading_members(sale.lot.seller_id),
            title=_("“%(title)s”未成交：%(reason)s。您可以调整后重新挂牌。")
            % {"title": title, "reason": FailReason(reason).label},
            url=url, kind="failed",
        )  # fmt: skip
    return sale


def sale_close(*, sale_id: int) -> str:
    """Close a sale whose time is up: exactly one result however often and by whom it is called.

    Returns ``"closed"``, ``"failed"``, ``"already"`` (someone closed it first) or ``"not_due"``
    (the end moved later, by a soft-close extension)."""
    with transaction.atomic():
        sale = (
            Sale.objects.select_for_update(of=("self",))
            .select_related("lot", "lot__category")
            .filter(pk=sale_id)
            .first()
        )
        if sale is None or sale.status != SaleStatus.ACTIVE:
            return "already"
        now = timezone.now()
        if sale.lot.status == LotStatus.WITHDRAWN:
            _sale_cancel(sale)
            return "failed"
        if now < sale.closes_at:
            return "not_due"
        if sale.lot.status != LotStatus.PUBLISHED:
            _sale_end(sale, sold=False, reason=FailReason.NOT_PUBLISHED)
            return "failed"
        if sale.mode == TradeMode.AUCTION:
            result = engine.auction_result(rules_of(sale), state_of(sale))
        elif sale.mode == TradeMode.TENDER:
            bids = [
                engine.TenderBid(b.organisation_id, b.amount, b.sequence)
                for b in Bid.objects.filter(sale=sale, kind=BidKind.TENDER)
            ]
            result = engine.tender_result(
                bids, reserve=sale.reserve_price, min_bidders=sale.min_bidders, start_price=sale.start_price
            )
            if result.winner is not None:
                sale.current_price = result.price
        elif sale.mode == TradeMode.FIXED:
            sold = sale.awards.exists()
            _sale_end(sale, sold=sold, reason="" if sold else FailReason.NO_BIDS)
            return "closed" if sold else "failed"
        else:  # quotation: nobody's offer was accepted in time
            _sale_end(sale, sold=False, reason=FailReason.NO_BIDS)
            return "failed"
        if result.winner is None:
            _sale_end(sale, sold=False, reason=result.reason)
            return "failed"
        bid = (
            Bid.objects.filter(sale=sale, organisation_id=result.winner)
            .exclude(kind=BidKind.RAISE).order_by("-sequence").first()
        )  # fmt: skip
        _award_create(
            sale, source=AwardSource.TENDER if sale.mode == TradeMode.TENDER else AwardSource.AUCTION,
            buyer_id=result.winner, quantity=sale.lot.quantity, unit_price=result.price, bid=bid,
        )  # fmt: skip
        _sale_end(sale, sold=True, reason="", winner_id=result.winner)
        return "closed"


def _sale_cancel(sale: Sale) -> None:
    sale.closed_at = timezone.now()
    sale.fail_reason = FailReason.WITHDRAWN
    sale.sequence += 1
    transition(
        sale, field="status", to=SaleStatus.CANCELLED, table=SALE_TRANSITIONS, actor=None, action="sale.cancel",
        extra_fields=["closed_at", "fail_reason", "sequence"],
    )  # fmt: skip
    for deposit in Deposit.objects.select_for_update().filter(
        sale=sale, status__in=[DepositStatus.PENDING, DepositStatus.PAID]
    ):
        _deposit_move(deposit, DepositStatus.RELEASED, actor=None, action="deposit.release")
    _after_change(sale, event="closed")


def sale_closing_warn(*, sale_id: int) -> bool:
    """Tell bidders once that a sale closes within the warning window (15 minutes)."""
    with transaction.atomic():
        sale = Sale.objects.select_for_update(skip_locked=True).select_related("lot").filter(
            pk=sale_id, status=SaleStatus.ACTIVE, closing_warned_at__isnull=True
        ).first()  # fmt: skip
        if sale is None:
            return False
        sale.closing_warned_at = timezone.now()
        sale.save(update_fields=["closing_warned_at"])
        org_ids = Bidder.objects.filter(sale=sale).values_list("organisation_id", flat=True)
        notify_users(
            trading_members(*org_ids),
            title=_("“%(title)s”将在 15 分钟内截止。") % {"title": sale.lot.title},
            url=_lot_url(sale.lot_id), kind="closing",
        )  # fmt: skip
    return True


__all__ = [
    "TradeRefused",
    "bid_place",
    "buy",
    "deposit_confirm",
    "deposit_create",
    "deposit_settle",
    "eligibility_check",
    "lot_offer_accept",
    "lot_offer_create",
    "sale_close",
    "sale_closing_warn",
    "sale_configure",
    "wanted_offer_award",
]
