"""Pages of the trading floor: the live panel of a lot's page (auction, sealed tender, fixed price,
quotation, deposit), the seller's sale terms, my bids, my awards and notifications.

Thin like the other page modules: reads through ``market.trading.selectors``, writes through
``market.trading.services``. A refusal of the market's rules (``TradeRefused``: a message and an HTTP
status) is shown above the form that caused it, with that status; a ``ValidationError`` goes beside
its field. The live panel is kept current by ``src/trading.ts`` over ``/ws/lots/{id}/``; every form
also works without JavaScript.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from frontend.forms import form_errors_apply
from frontend.forms_trading import BidForm, BuyForm, LotOfferForm, SaleForm, TenderForm, sale_initial
from frontend.views_listings import (
    _acting_organisation,
    _acting_organisation_require,
    _lot_page,
    _lot_url,
    _lot_visible,
    _plain,
)
from listings.models import LotStatus, TradeMode, Unit
from listings.services import seller_require
from market.accounts.selectors import membership_of
from market.core.audit import client_ip
from market.core.money import yuan_text as _yuan
from market.core.notify import notifications_mark_read, notifications_of
from market.trading import selectors, services
from market.trading.models import (
    Award,
    Bid,
    Bidder,
    BidKind,
    Deposit,
    DepositStatus,
    LotOffer,
    SaleStatus,
)
from market.trading.services import TradeRefused

HISTORY_ROWS = 20
PAGE_ROWS = 100
CONFIGURABLE = (LotStatus.DRAFT, LotStatus.SUBMITTED, LotStatus.PUBLISHED)


def _refusal_text(exc) -> str:
    if isinstance(exc, TradeRefused):
        return str(exc.detail)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("您没有权限执行此操作。")


def _sale_locked(sale) -> bool:
    """Terms are fixed once anyone has bid, quoted or asked to pay a deposit (the service's rule)."""
    if sale is None or sale.status != SaleStatus.ACTIVE:
        return False
    return bool(sale.bid_count or sale.deposits.exists() or sale.offers.exists() or sale.awards.exists())


# --- the panel of a lot's page --------------------------------------------------------------


def _bidder_state(request, sale, organisation, deposit) -> tuple[str, str]:
    """Whether the acting organisation may bid here, and if not, why (the services' own checks)."""
    if not request.user.is_authenticated:
        return "anonymous", ""
    if organisation is None:
        return "no_org", ""
    membership = request.acting_membership
    if not membership.can_trade:
        return "viewer", ""
    try:
        services.eligibility_check(sale, organisation, need_deposit=False)
    except TradeRefused as exc:
        return "ineligible", _refusal_text(exc)
    if sale.deposit_amount > 0 and (deposit is None or deposit.status != DepositStatus.PAID):
        return "deposit", ""
    return "ok", ""


def trading_context(
    request,
    lot,
    *,
    seller_membership=None,
    bid_form=None,
    tender_form=None,
    buy_form=None,
    offer_form=None,
    trade_error="",
) -> dict:
    """What the trading panel of a lot's page shows to this visitor."""
    can_configure = bool(
        seller_membership
        and seller_membership.can_trade
        and lot.seller.is_generator
        and lot.status in CONFIGURABLE
    )
    sale = selectors.sale_current(lot.pk)
    context = {"sale": None, "can_configure": can_configure, "trade_error": trade_error}
    if sale is None:
        return context
    sale.lot = lot
    organisation = _acting_organisation(request)
    state = selectors.sale_state_for(sale, organisation)
    you = state["you"]
    is_seller = seller_membership is not None or (
        organisation is not None and organisation.pk == lot.seller_id
    )
    active = sale.status == SaleStatus.ACTIVE
    now = timezone.now()
    open_now = active and lot.status == LotStatus.PUBLISHED and sale.starts_at <= now < sale.closes_at
    deposit = None
    if you and you["deposit"]:
        deposit = Deposit.objects.filter(pk=you["deposit"]["id"]).first()
    bidder_state, refusal = ("seller", "") if is_seller else ("closed", "")
    if not is_seller and active:
        bidder_state, refusal = _bidder_state(request, sale, organisation, deposit)
    sealed = sale.mode == TradeMode.TENDER and active
    bids = []
    if sale.mode in (TradeMode.AUCTION, TradeMode.TENDER):
        bids = list(selectors.bids_visible(sale, organisation=organisation)[:HISTORY_ROWS])
    offers = []
    if sale.mode == TradeMode.QUOTATION and (is_seller or organisation is not None):
        viewer = lot.seller if is_seller else organisation
        offers = list(selectors.offers_visible(sale, organisation=viewer).order_by("-created_at")[:PAGE_ROWS])
    awards = []
    if sale.status == SaleStatus.CLOSED and (is_seller or organisation is not None):
        awards = [
            a
            for a in sale.awards.select_related("buyer").order_by("awarded_at", "id")
            if is_seller or a.buyer_id == organisation.pk
        ]
    minimum = state["minimum_next"]
    context.update(
        {
            "sale": sale,
            "state": state,
            "you": you,
            "is_seller_view": is_seller,
            "organisation_id": organisation.pk if organisation is not None else None,
            "active": active,
            "open_now": open_now,
            "not_started": active and now < sale.starts_at,
            "sealed": sealed,
            "bidder_state": bidder_state,
            "refusal": refusal,
            "deposit": deposit,
            "bids": bids,
            "offers": offers,
            "awards": awards,
            "can_accept": bool(seller_membership and seller_membership.can_trade and active),
            "sale_locked": can_configure and _sale_locked(sale),
            "unit_label": lot.get_unit_display(),
            "extend_window_min": f"{sale.extend_window_s / 60:g}",
            "extend_by_min": f"{sale.extend_by_s / 60:g}",
            "bid_form": bid_form or BidForm(auto_id="bid_%s"),
            "tender_form": tender_form or TenderForm(auto_id="tender_%s"),
            "buy_form": buy_form
            or BuyForm(auto_id="buy_%s", initial={"quantity": _plain(sale.quantity_remaining)}),
            "offer_form": offer_form
            or LotOfferForm(auto_id="offer_%s", initial={"quantity": _plain(lot.quantity)}),
        }
    )
    if minimum is not None:
        context["bid_form"].fields["amount"].widget.attrs.update({"min": minimum, "placeholder": minimum})
    if sale.start_price is not None and sealed:
        context["tender_form"].fields["amount"].widget.attrs["min"] = str(sale.start_price)
    if sale.mode == TradeMode.FIXED and sale.quantity_remaining is not None:
        attrs = context["buy_form"].fields["quantity"].widget.attrs
        attrs["max"] = str(sale.quantity_remaining)
        if sale.min_quantity is not None:
            attrs["min"] = str(min(sale.min_quantity, sale.quantity_remaining))
    return context


@require_GET
def lot_live(request, pk):
    """The parts of the panel that depend on the viewer (your standing, the bid history and the
    quotations), reloaded by trading.ts after each change."""
    lot = _lot_visible(request, pk)
    membership = membership_of(request.user, lot.seller) if request.user.is_authenticated else None
    context = {"lot": lot, **trading_context(request, lot, seller_membership=membership)}
    return render(request, "frontend/trading/_live.html", context)


def _refused_page(request, lot, exc, *, form_key: str, form):
    status = getattr(exc, "status_code", 403 if isinstance(exc, PermissionDenied) else 400)
    return _lot_page(request, lot, trading={form_key: form, "trade_error": _refusal_text(exc)}, status=status)


# --- bidding, buying, quoting, deposits -----------------------------------------------------


@login_required
@require_POST
def lot_bid(request, pk):
    lot = _lot_visible(request, pk)
    sale = selectors.sale_current(lot.pk)
    tender = sale is not None and sale.mode == TradeMode.TENDER
    form_key = "tender_form" if tender else "bid_form"
    form = (
        TenderForm(request.POST, auto_id="tender_%s") if tender else BidForm(request.POST, auto_id="bid_%s")
    )
    if not form.is_valid():
        return _lot_page(request, lot, trading={form_key: form}, status=400)
    try:
        organisation = _acting_organisation_require(request)
        state = services.bid_place(
            actor=request.user,
            organisation=organisation,
            lot_id=lot.pk,
            amount=form.cleaned_data["amount"],
            maximum=form.cleaned_data.get("maximum"),
            ip=client_ip(request),
        )
    except ValidationError as exc:
        form_errors_apply(form, exc)
        return _lot_page(request, lot, trading={form_key: form}, status=400)
    except (TradeRefused, PermissionDenied) as exc:
        return _refused_page(request, lot, exc, form_key=form_key, form=form)
    if tender:
        messages.success(
            request,
            _("投标已提交：¥%(amount)s/%(unit)s。截止前可以修改，以最后一次为准。")
            % {"amount": _yuan(form.cleaned_data["amount"]), "unit": lot.get_unit_display()},
        )
    elif state["you"] and state["you"]["leading"]:
        messages.success(
            request, _("出价成功，您目前领先。当前价 ¥%(price)s。") % {"price": _yuan(state["current_price"])}
        )
    else:
        messages.warning(
            request,
            _("出价已记录，但其他竞买人的代理出价更高。当前价 ¥%(price)s。")
            % {"price": _yuan(state["current_price"])},
        )
    return redirect(_lot_url(lot, "trading"))


def _award_message(award: Award, lot) -> str:
    return _("已成交：%(quantity)s %(unit)s，单价 ¥%(price)s，金额 ¥%(amount)s。请在“我的成交”查看。") % {
        "quantity": number_format(_plain(award.quantity), force_grouping=True),
        "unit": lot.get_unit_display(),
        "price": _yuan(award.unit_price),
        "amount": _yuan(award.amount),
    }


@login_required
@require_POST
def lot_buy(request, pk):
    """Fixed price (a quantity) or an auction's buy-now price (the whole lot)."""
    lot = _lot_visible(request, pk)
    form = BuyForm(request.POST, auto_id="buy_%s")
    if not form.is_valid():
        return _lot_page(request, lot, trading={"buy_form": form}, status=400)
    try:
        organisation = _acting_organisation_require(request)
        award = services.buy(
            actor=request.user,
            organisation=organisation,
            lot_id=lot.pk,
            quantity=form.cleaned_data.get("quantity"),
            ip=client_ip(request),
        )
    except ValidationError as exc:
        form_errors_apply(form, exc)
        return _lot_page(request, lot, trading={"buy_form": form}, status=400)
    except (TradeRefused, PermissionDenied) as exc:
        return _refused_page(request, lot, exc, form_key="buy_form", form=form)
    messages.success(request, _award_message(award, lot))
    return redirect(_lot_url(lot, "trading"))


@login_required
@require_POST
def lot_offer_create(request, pk):
    lot = _lot_visible(request, pk)
    form = LotOfferForm(request.POST, auto_id="offer_%s")
    if not form.is_valid():
        return _lot_page(request, lot, trading={"offer_form": form}, status=400)
    try:
        organisation = _acting_organisation_require(request)
        services.lot_offer_create(
            actor=request.user,
            organisation=organisation,
            lot_id=lot.pk,
            quantity=form.cleaned_data["quantity"],
            unit_price=form.cleaned_data["unit_price"],
            message=form.cleaned_data["message"],
            ip=client_ip(request),
        )
    except ValidationError as exc:
        form_errors_apply(form, exc)
        return _lot_page(request, lot, trading={"offer_form": form}, status=400)
    except (TradeRefused, PermissionDenied) as exc:
        return _refused_page(request, lot, exc, form_key="offer_form", form=form)
    messages.success(request, _("报价已发送给卖方。再次报价会替换您之前的报价。"))
    return redirect(_lot_url(lot, "trading"))


@login_required
@require_POST
def lot_offer_accept(request, pk, offer_id):
    lot = _lot_visible(request, pk)
    offer = get_object_or_404(
        LotOffer.objects.select_related("sale", "sale__lot", "sale__lot__seller", "buyer"),
        pk=offer_id,
        sale__lot=lot,
    )
    try:
        award = services.lot_offer_accept(actor=request.user, offer=offer, ip=client_ip(request))
    except PermissionDenied:
        raise
    except (TradeRefused, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(request, _award_message(award, lot))
    return redirect(_lot_url(lot, "trading"))


@login_required
@require_POST
def lot_deposit(request, pk):
    lot = _lot_visible(request, pk)
    try:
        organisation = _acting_organisation_require(request)
        deposit = services.deposit_create(
            actor=request.user, organisation=organisation, lot_id=lot.pk, ip=client_ip(request)
        )
    except (TradeRefused, PermissionDenied, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(
            request,
            _("请通过对公转账缴纳保证金 ¥%(amount)s，附言填写 %(reference)s。平台确认到账后即可出价。")
            % {"amount": _yuan(deposit.amount), "reference": deposit.reference},
        )
    return redirect(_lot_url(lot, "trading"))


# --- the seller's terms ---------------------------------------------------------------------


@login_required
def sale_configure(request, pk):
    lot = _lot_visible(request, pk)
    seller_require(request.user, lot.seller)
    sale = selectors.sale_active(lot.pk)
    locked = _sale_locked(sale)
    can_configure = lot.status in CONFIGURABLE and not locked
    status = 200
    if request.method == "POST":
        form = SaleForm(request.POST)
        status = 400
        if not can_configure:
            form.is_valid()
            form.add_error(
                None,
                _("已有人出价、报价或缴纳保证金，交易条件不能再修改。")
                if locked
                else _("“%(status)s”状态的标的不能设置交易方式。") % {"status": lot.get_status_display()},
            )
        elif form.is_valid():
            try:
                services.sale_configure(
                    actor=request.user, lot=lot, ip=client_ip(request), **form.service_values()
                )
            except ValidationError as exc:
                form_errors_apply(form, exc, form.error_map())
            else:
                if lot.status == LotStatus.PUBLISHED:
                    messages.success(request, _("交易条件已保存，买家现在可以参与。"))
                else:
                    messages.success(request, _("交易条件已保存，标的挂牌后即可开始交易。"))
                return redirect(_lot_url(lot, "trading"))
    else:
        form = SaleForm(initial=sale_initial(sale) if sale else {})
    context = {"lot": lot, "sale": sale, "form": form, "locked": locked, "can_configure": can_configure}
    return render(request, "frontend/trading/sale_form.html", context, status=status)


# --- my bids, my awards ---------------------------------------------------------------------


def _bid_outcome(bidder, organisation_id: int, won: set[int]) -> tuple[str, str]:
    """(css state, label) of one sale the organisation took part in."""
    sale = bidder.sale
    if sale.status == SaleStatus.ACTIVE:
        if sale.mode == TradeMode.AUCTION:
            if sale.leader_id == organisation_id:
                return "leading", _("领先")
            return "outbid", _("已被超过")
        if sale.mode == TradeMode.TENDER:
            return "sealed", _("已投标（密封）")
        if sale.mode == TradeMode.QUOTATION:
            return "sealed", _("已报价，等待卖方")
        return "open", _("进行中")
    if sale.pk in won:
        return "won", _("已成交")
    if sale.status == SaleStatus.CLOSED:
        return "lost", _("未成交")
    return "ended", sale.get_fail_reason_display() or sale.get_status_display()


@login_required
def my_bids(request):
    organisation = _acting_organisation(request)
    context = {"organisation": organisation, "rows": []}
    if organisation is not None:
        last_amount = (
            Bid.objects.filter(bidder=OuterRef("pk"))
            .exclude(kind=BidKind.RAISE)
            .order_by("-sequence")
            .values("amount")[:1]
        )
        bidders = list(
            Bidder.objects.filter(organisation=organisation)
            .select_related("sale", "sale__lot")
            .annotate(last_amount=Subquery(last_amount))
            .order_by("-sale__closes_at", "-pk")[:PAGE_ROWS]
        )
        won = set(
            Award.objects.filter(sale_id__in=[b.sale_id for b in bidders], buyer=organisation).values_list(
                "sale_id", flat=True
            )
        )
        for bidder in bidders:
            bidder.outcome, bidder.outcome_label = _bid_outcome(bidder, organisation.pk, won)
            bidder.is_active = bidder.sale.status == SaleStatus.ACTIVE
            sealed = bidder.sale.mode == TradeMode.TENDER and bidder.is_active
            # The current price of a sealed tender is nobody's business before the close.
            bidder.price_shown = None if sealed else bidder.sale.current_price
        context["rows"] = bidders
    return render(request, "frontend/trading/my_bids.html", context)


@login_required
def my_awards(request):
    organisation = _acting_organisation(request)
    context = {"organisation": organisation, "awards": []}
    if organisation is not None:
        awards = list(
            selectors.awards_of([organisation.pk]).select_related("wanted_offer", "deal")[:PAGE_ROWS]
        )
        units = dict(Unit.choices)
        for award in awards:
            award.as_buyer = award.buyer_id == organisation.pk
            award.unit_label = units.get(award.unit, award.unit)
            try:
                award.deal_link = award.deal  # the contract the award became (market.deals)
            except ObjectDoesNotExist:
                award.deal_link = None
        context["awards"] = awards
    return render(request, "frontend/trading/my_awards.html", context)


# --- notifications --------------------------------------------------------------------------


@login_required
def notifications(request):
    items = list(notifications_of(request.user).order_by("-created_at", "-id")[:PAGE_ROWS])
    unread = sum(1 for n in items if n.read_at is None)
    return render(request, "frontend/trading/notifications.html", {"items": items, "unread_here": unread})


@login_required
@require_POST
def notifications_read(request):
    changed = notifications_mark_read(request.user)
    if changed:
        messages.success(request, _("已将 %(n)d 条通知标为已读。") % {"n": changed})
    return redirect("frontend:notifications")


__all__ = [
    "lot_bid",
    "lot_buy",
    "lot_deposit",
    "lot_live",
    "lot_offer_accept",
    "lot_offer_create",
    "my_awards",
    "my_bids",
    "notifications",
    "notifications_read",
    "sale_configure",
    "trading_context",
]
