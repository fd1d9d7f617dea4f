"""Pages of deals (成交合同): my deals, a deal with the forms of its next steps, the payment page,
the printable contract and manifest, and the public trace page of a lot.

Thin like the other page modules: reads through ``market.deals.selectors``, writes through
``market.deals.services``. Each form posts to its own small view, which calls one service and
redirects back to the deal with a message. A refusal (``DealRefused``: a message and an HTTP status,
``PermissionDenied``, ``ValidationError``) is shown beside the field it concerns or above the form,
on the deal's page answered with the refusal's status; a one-button action shows it as a message.
Whoever is not a party of the deal (nor an operator, nor the government office of a hazardous
deal's jurisdiction) gets 404, so a deal's existence is not revealed.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from frontend.forms import form_errors_apply
from frontend.forms_deals import (
    REFUSAL_FIELDS,
    DisputeForm,
    ManifestForm,
    PayForm,
    PickupForm,
    RatingForm,
    ResolveForm,
    SlipForm,
    TraceLookupForm,
    WeighingForm,
)
from frontend.forms_listings import category_name
from frontend.views_listings import _acting_organisation, _pages, _plain
from listings.models import Category, Unit
from market.accounts.models import Membership
from market.accounts.selectors import memberships_of
from market.core.audit import audit_trail, client_ip
from market.core.models import AuditEntry, Region
from market.core.money import yuan_text as _yuan
from market.core.uploads import stored_open
from market.deals import selectors, services, stripe_gateway
from market.deals.models import (
    Deal,
    DealStatus,
    DefaultParty,
    Manifest,
    ManifestStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    TraceEntry,
    Weighing,
    WeighingStatus,
)
from market.deals.services import DealRefused
from market.trading.models import AwardSource

PAGE_SIZE = 20
OPEN_PAYMENT = (PaymentStatus.PENDING, PaymentStatus.SUBMITTED)
B, S = DefaultParty.BUYER, DefaultParty.SELLER

# --- words ----------------------------------------------------------------------------------

TRACE_EVENTS = {
    "listed": gettext_lazy("挂牌"),
    "closed": gettext_lazy("交易结束"),
    "awarded": gettext_lazy("成交"),
    "paid": gettext_lazy("货款到账"),
    "picked_up": gettext_lazy("提货"),
    "weighed": gettext_lazy("过磅"),
    "manifest_opened": gettext_lazy("开具转移联单"),
    "manifest_completed": gettext_lazy("转移联单确认"),
    "settled": gettext_lazy("结算"),
    "completed": gettext_lazy("交易完成"),
    "defaulted": gettext_lazy("违约终止"),
    "disputed": gettext_lazy("发起争议"),
    "resolved": gettext_lazy("争议裁定"),
    "cancelled": gettext_lazy("合同取消"),
}

AUDIT_ACTIONS = {
    "deal.create": gettext_lazy("生成合同"),
    "deal.paid": gettext_lazy("货款到账"),
    "deal.pickup": gettext_lazy("预约提货"),
    "deal.pickup_rebook": gettext_lazy("改约提货"),
    "deal.weigh": gettext_lazy("录入磅单"),
    "weighing.confirm": gettext_lazy("确认过磅结果"),
    "deal.dispute": gettext_lazy("发起争议"),
    "deal.resolve": gettext_lazy("按裁定净重结算"),
    "dispute.decide": gettext_lazy("平台裁定争议"),
    "deal.cancel": gettext_lazy("取消合同"),
    "deal.settle": gettext_lazy("结算"),
    "deal.complete": gettext_lazy("确认收货，交易完成"),
    "deal.default": gettext_lazy("违约终止"),
    "deal.reverse": gettext_lazy("撤销成交记录"),
    "rating.create": gettext_lazy("评价对方"),
    "payment.start": gettext_lazy("发起付款"),
    "payment.submit": gettext_lazy("已提交转账凭证"),
    "payment.succeed": gettext_lazy("确认到账"),
    "payment.fail": gettext_lazy("支付失败"),
    "payment.cancel": gettext_lazy("付款取消"),
    "manifest.create": gettext_lazy("开具转移联单"),
    "manifest.confirm.generator": gettext_lazy("产生单位确认联单"),
    "manifest.confirm.transporter": gettext_lazy("运输单位确认联单"),
    "manifest.confirm.receiver": gettext_lazy("接收单位确认联单"),
}

MANIFEST_ROLE_LABELS = {
    "generator": gettext_lazy("产生单位（卖方）"),
    "transporter": gettext_lazy("运输单位"),
    "receiver": gettext_lazy("接收单位（买方）"),
}


def _qty(value) -> str:
    return number_format(_plain(value), force_grouping=True)


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None


def _unit_label(code: str) -> str:
    return str(dict(Unit.choices).get(code, code))


def _party_label(party: str) -> str:
    return str(DefaultParty(party).label) if party in DefaultParty.values else party


def rmb_upper(value: Decimal) -> str:
    """An amount in yuan written out in capital numerals, as on Chinese contracts and cheques
    (1,050,000.00 -> 壹佰零伍万元整)."""
    digits = "零壹贰叁肆伍陆柒捌玖"
    value = Decimal(value).quantize(Decimal("0.01"))
    if value < 0:
        return "负" + rmb_upper(-value)
    yuan, cents = divmod(int(value * 100), 100)
    jiao, fen = divmod(cents, 10)

    def group(n: int) -> str:
        out, zero = "", False
        for size, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
            d = n // size % 10
            if d:
                out += ("零" if zero else "") + digits[d] + unit
                zero = False
            elif out:
                zero = True
        return out

    groups = []
    while yuan:
        yuan, rest = divmod(yuan, 10000)
        groups.append(rest)
    text, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        n = groups[index]
        if n == 0:
            gap = bool(text)
            continue
        if text and (gap or n < 1000):
            text += "零"
        text += group(n) + ("", "万", "亿", "万亿")[index]
        gap = False
    if not text and cents:
        return (digits[jiao] + "角" if jiao else "") + (digits[fen] + "分" if fen else "整")
    text = (text or "零") + "元"
    if not cents:
        return text + "整"
    return text + (digits[jiao] + "角" if jiao else "零") + (digits[fen] + "分" if fen else "整")


def _qr_svg(url: str) -> str:
    """A QR code of ``url`` as inline SVG, made here (no outside service sees the code)."""
    return mark_safe(segno.make(url, error="m").svg_inline(scale=3, svgclass="qr", title=url))  # noqa: S308


def _trace_url(request, code: str) -> str:
    return request.build_absolute_uri(reverse("frontend:trace", args=[code]))


def _mask_plate(plate: str) -> str:
    plate = str(plate or "")
    return plate[:2] + "***" + plate[-2:] if len(plate) > 4 else plate


def trace_sentence(entry: TraceEntry, *, regions: dict, categories: dict, unit: str = "") -> str:
    """What one trace entry says, in plain words of the page's language (``unit``: the unit of the
    entry's deal, for entries that do not carry it)."""
    d = entry.data or {}
    unit = _unit_label(d.get("unit", "") or unit)

    def qty(key):
        value = _decimal(d.get(key))
        return _qty(value) if value is not None else "—"

    def money(key):
        value = _decimal(d.get(key))
        return _yuan(value) if value is not None else "—"

    event = entry.event
    if event == "listed":
        text = _("%(category)s %(quantity)s %(unit)s，产地 %(region)s") % {
            "category": categories.get(d.get("category"), d.get("category", "")),
            "quantity": qty("quantity"),
            "unit": unit,
            "region": regions.get(d.get("region"), d.get("region", "")),
        }
        return text + ("，" + _("危险废物") if d.get("hazardous") else "")
    if event == "closed":
        from listings.models import TradeMode

        return _("%(mode)s结束：%(bids)s 次出价，%(bidders)s 家竞买单位") % {
            "mode": dict(TradeMode.choices).get(d.get("mode"), d.get("mode", "")),
            "bids": d.get("bids", 0),
            "bidders": d.get("bidders", 0),
        }
    if event == "awarded":
        return _(
            "合同 %(deal)s：成交 %(quantity)s %(unit)s，单价 ¥%(price)s，金额 ¥%(amount)s（%(source)s）"
        ) % {
            "deal": d.get("deal", ""),
            "quantity": qty("quantity"),
            "unit": unit,
            "price": money("unit_price"),
            "amount": money("amount"),
            "source": dict(AwardSource.choices).get(d.get("source"), d.get("source", "")),
        }
    if event == "paid":
        return _("货款 ¥%(amount)s 已到账（%(method)s）") % {
            "amount": money("amount"),
            "method": dict(PaymentMethod.choices).get(d.get("method"), d.get("method", "")),
        }
    if event == "picked_up":
        if d.get("vehicle"):  # older entries carried the plate: shown masked
            return _("车辆 %(plate)s 到场提货") % {"plate": _mask_plate(d["vehicle"])}
        return _("买方到场提货")
    if event == "weighed":
        difference = _decimal(d.get("difference")) or Decimal("0")
        return _("磅单 %(ticket)s：净重 %(net)s 吨，与合同数量相差 %(pct)s%%") % {
            "ticket": d.get("ticket", ""),
            "net": qty("net_t"),
            "pct": number_format((difference * 100).quantize(Decimal("0.01"))),
        }
    if event == "manifest_opened":
        return _("转移联单 %(number)s，废物代码 %(hw)s") % {
            "number": d.get("manifest", ""),
            "hw": d.get("hw", ""),
        }
    if event == "manifest_completed":
        return _("转移联单 %(number)s 经产生单位、运输单位、接收单位三方确认") % {
            "number": d.get("manifest", "")
        }
    if event == "settled":
        return _("按过磅结果结算：%(quantity)s %(unit)s，金额 ¥%(amount)s") % {
            "quantity": qty("quantity"),
            "unit": unit,
            "amount": money("amount"),
        }
    if event == "completed":
        return _("买方确认收货，交易完成")
    if event == "defaulted":
        return _("%(party)s违约，合同终止") % {"party": _party_label(d.get("by", ""))}
    if event == "disputed":
        return _("%(party)s提出异议，平台介入处理") % {"party": _party_label(d.get("by", ""))}
    if event == "resolved":
        return _("平台裁定净重 %(net)s 吨") % {"net": qty("net_t")}
    if event == "cancelled":
        return _("合同取消：%(reason)s") % {"reason": d.get("reason", "")}
    return "；".join(f"{k}：{v}" for k, v in d.items())


def trace_rows(entries: list[TraceEntry], *, first_broken: int | None = None) -> list[dict]:
    """Entries with their label and sentence; names of regions and categories in two queries."""
    region_codes = {e.data.get("region") for e in entries if e.event == "listed" and e.data.get("region")}
    category_codes = {
        e.data.get("category") for e in entries if e.event == "listed" and e.data.get("category")
    }
    regions = (
        {
            r.code: r.full_name
            for r in Region.objects.filter(pk__in=region_codes).select_related("parent__parent")
        }
        if region_codes
        else {}
    )
    categories = (
        {c.code: category_name(c) for c in Category.objects.filter(pk__in=category_codes)}
        if category_codes
        else {}
    )
    rows, units = [], {}
    for entry in entries:
        data = entry.data or {}
        if data.get("unit"):
            units[data.get("deal", "")] = data["unit"]
        unit = units.get(data.get("deal", ""), units.get("", ""))
        rows.append(
            {
                "n": entry.index + 1,
                "entry": entry,
                "label": TRACE_EVENTS.get(entry.event, entry.event),
                "text": trace_sentence(entry, regions=regions, categories=categories, unit=unit),
                "deal": data.get("deal", ""),
                "broken": first_broken is not None and entry.index >= first_broken,
            }
        )
    return rows


# --- who is looking -------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    party: str  # "buyer", "seller" or "" (an operator, a government office)
    can_act: bool  # a trader or admin of that party
    operator: bool
    membership: Membership | None = None

    @property
    def is_buyer(self) -> bool:
        return self.party == B

    @property
    def is_seller(self) -> bool:
        return self.party == S


def _viewer(request, deal: Deal) -> Viewer:
    """The party the user acts for: the acting organisation when it is a party, else the user's
    membership of the buyer (first) or the seller, as the services decide."""
    user = request.user
    operator = bool(getattr(user, "is_operator", False))
    parties = (deal.buyer_id, deal.seller_id)
    acting = getattr(request, "acting_membership", None)
    membership = None
    if acting is not None and getattr(acting, "pk", None) and acting.organisation_id in parties:
        membership = acting
    elif user.is_authenticated:
        found = {m.organisation_id: m for m in memberships_of(user).filter(organisation_id__in=parties)}
        membership = found.get(deal.buyer_id) or found.get(deal.seller_id)
    if membership is None:
        return Viewer(party="", can_act=False, operator=operator)
    party = B if membership.organisation_id == deal.buyer_id else S
    return Viewer(party=party, can_act=membership.can_trade, operator=operator, membership=membership)


def _deal_get(request, pk) -> Deal:
    return get_object_or_404(
        selectors.deals_visible(request.user).select_related("lot", "award", "trace_chain", "region__parent"),
        pk=pk,
    )


def _deal_url(deal: Deal, anchor: str = "") -> str:
    url = reverse("frontend:deal", args=[deal.pk])
    return f"{url}#{anchor}" if anchor else url


def _refusal_text(exc) -> str:
    if isinstance(exc, DealRefused):
        return str(exc.detail)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("您没有权限执行此操作。")


def _refusal_status(exc) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    return getattr(exc, "status_code", 400)


def _refusal_apply(form, exc) -> None:
    """A refusal onto the form: beside its field if it concerns one, else above the form."""
    if isinstance(exc, ValidationError):
        form_errors_apply(form, exc)
        return
    field = REFUSAL_FIELDS.get(getattr(exc, "code", ""))
    form.add_error(field if field in form.fields else None, _refusal_text(exc))


# --- next steps -----------------------------------------------------------------------------


def _extra_steps(deal: Deal, viewer: Viewer, *, submitted_payment: bool) -> list[tuple[str, str]]:
    """Steps the page offers beside ``selectors.next_steps``: the seller (or an operator) confirms a
    bank transfer the buyer says is made; an operator decides a dispute."""
    steps = []
    if submitted_payment and ((viewer.is_seller and viewer.can_act) or viewer.operator):
        steps.append(("confirm_payment", _("买方已提交转账凭证：核对到账后请确认。")))
    if viewer.operator and deal.status == DealStatus.DISPUTED:
        steps.append(("resolve", _("争议待平台裁定。")))
    return steps


# --- my deals -------------------------------------------------------------------------------


def _page_url(status: str, page: int) -> str:
    params = [f"status={status}"] if status else []
    if page > 1:
        params.append(f"page={page}")
    base = reverse("frontend:my_deals")
    return f"{base}?{'&'.join(params)}" if params else base


@login_required
def my_deals(request):
    organisation = _acting_organisation(request)
    context = {"organisation": organisation, "deals": []}
    if organisation is None:
        return render(request, "frontend/deals/my_deals.html", context)
    deals = selectors.deals_of_organisation(organisation.pk)
    counts = dict(deals.order_by().values_list("status").annotate(n=Count("id")))
    status = request.GET.get("status", "")
    if status not in DealStatus.values:
        status = ""
    rows = selectors.deals_with_steps(deals.filter(status=status) if status else deals)
    paginator = Paginator(rows, PAGE_SIZE)
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        number = 1
    page = paginator.get_page(number)
    can_act = bool(request.acting_membership.can_trade)
    for deal in page.object_list:
        party = B if deal.buyer_id == organisation.pk else S
        deal.party = party
        deal.counterparty = deal.seller if party == B else deal.buyer
        deal.unit_label = _unit_label(deal.unit)
        viewer = Viewer(party=party, can_act=can_act, operator=False)
        deal.steps = selectors.next_steps(deal, party) + _extra_steps(
            deal, viewer, submitted_payment=deal.slip_waiting
        )
    context.update(
        {
            "deals": page.object_list,
            "page": page,
            "status": status,
            "total": sum(counts.values()),
            "tabs": [(value, label, counts.get(value, 0)) for value, label in DealStatus.choices],
            "pages": [
                {"n": n, "url": _page_url(status, n), "current": n == page.number} if n else None
                for n in _pages(page.number, paginator.num_pages)
            ]
            if paginator.num_pages > 1
            else [],
            "prev_url": _page_url(status, page.number - 1) if page.has_previous() else "",
            "next_url": _page_url(status, page.number + 1) if page.has_next() else "",
        }
    )
    return render(request, "frontend/deals/my_deals.html", context)


# --- a deal's page --------------------------------------------------------------------------


def _timeline(
    deal: Deal, payments: list[Payment], manifest: Manifest | None, trace: list[dict], viewer
) -> list:
    """The deal's audit trail (its own, its payments' and its manifest's) and its trace entries, by
    time. Parties see who acted as buyer, seller, platform or system; operators also see the login."""
    entries = audit_trail(deal)
    if payments:
        entries = entries | AuditEntry.objects.filter(
            target_type=Payment._meta.label_lower, target_id__in=[str(p.pk) for p in payments]
        )
    if manifest is not None:
        entries = entries | AuditEntry.objects.filter(
            target_type=Manifest._meta.label_lower, target_id=str(manifest.pk)
        )
    entries = list(entries.order_by("at", "id"))
    members = dict(
        Membership.objects.filter(
            organisation_id__in=[deal.buyer_id, deal.seller_id],
            user_id__in={e.actor_id for e in entries if e.actor_id},
        ).values_list("user_id", "organisation_id")
    )
    states = {**dict(DealStatus.choices), **dict(PaymentStatus.choices)}
    rows = []
    for e in entries:
        org = members.get(e.actor_id)
        if org == deal.buyer_id:
            who = _("买方")
        elif org == deal.seller_id:
            who = _("卖方")
        elif e.actor_id:
            who = _("平台")
        else:
            who = _("系统")
        detail = ""
        if e.to_state:
            detail = str(states.get(e.to_state, e.to_state))
        if e.reason:
            detail = f"{detail}：{e.reason}" if detail else e.reason
        rows.append(
            {
                "at": e.at,
                "kind": "audit",
                "label": AUDIT_ACTIONS.get(e.action, e.action),
                "who": who,
                "login": e.actor_label if viewer.operator else "",
                "detail": detail,
            }
        )
    for row in trace:
        rows.append(
            {
                "at": row["entry"].occurred_at,
                "kind": "trace",
                "label": row["label"],
                "who": "",
                "n": row["n"],
                "detail": row["text"],
            }
        )
    # Trace times are kept to the second: within one second the operations come first.
    return [
        row
        for _key, row in sorted(
            enumerate(rows),
            key=lambda item: (item[1]["at"].replace(microsecond=0), item[1]["kind"] == "trace", item[0]),
        )
    ]


def _deal_context(request, deal: Deal, forms: dict | None = None) -> dict:
    forms = forms or {}
    viewer = _viewer(request, deal)
    balance = selectors.deal_balance(deal)
    payments = list(selectors.deal_payments(deal).select_related("created_by", "confirmed_by"))
    pickups = list(deal.pickups.order_by("-created_at", "-id"))
    weighings = list(deal.weighings.order_by("-created_at", "-id"))
    for weighing in weighings:
        weighing.pct = number_format((weighing.difference * 100).quantize(Decimal("0.01")))
    manifest = selectors.deal_manifest(deal) if deal.hazardous else None
    ratings = list(deal.ratings.select_related("rater", "ratee"))
    refunds = list(deal.refunds.order_by("created_at", "id"))
    steps = selectors.next_steps(deal, viewer.party) if viewer.party else []
    submitted = any(
        p.method == PaymentMethod.BANK_TRANSFER and p.status == PaymentStatus.SUBMITTED for p in payments
    )
    steps = steps + _extra_steps(deal, viewer, submitted_payment=submitted)
    codes = {code for code, _text in steps}
    acts = viewer.can_act
    trace_entries = []
    if deal.trace_chain_id:
        trace_entries = [
            e
            for e in selectors.trace_entries(deal.trace_chain)
            if (e.data or {}).get("deal", deal.number) == deal.number
        ]
    trace = trace_rows(trace_entries)
    open_bank = next(
        (
            p
            for p in reversed(payments)
            if p.method == PaymentMethod.BANK_TRANSFER and p.status in OPEN_PAYMENT
        ),
        None,
    )
    manifest_roles = []
    if manifest is not None and acts and manifest.status != ManifestStatus.COMPLETED:
        for role, (party, at_field, _by) in services.MANIFEST_ROLES.items():
            if party == viewer.party and getattr(manifest, at_field) is None:
                manifest_roles.append((role, MANIFEST_ROLE_LABELS[role]))
    can_dispute = acts and deal.status in (DealStatus.PAID, DealStatus.PICKUP_SCHEDULED, DealStatus.WEIGHED)
    can_rebook = acts and viewer.is_buyer and deal.status == DealStatus.PICKUP_SCHEDULED
    context = {
        "deal": deal,
        "viewer": viewer,
        "party_label": _party_label(viewer.party) if viewer.party else "",
        "counterparty": (deal.seller if viewer.is_buyer else deal.buyer) if viewer.party else None,
        "unit_label": _unit_label(deal.unit),
        "category_label": category_name(deal.category),
        "parties": [(_("卖方"), deal.seller), (_("买方"), deal.buyer)],
        "can_confirm_payments": (viewer.is_seller and acts) or viewer.operator,
        "balance": balance,
        "fee_rate_pct": (deal.fee_rate * 100).normalize(),
        "show_fee": viewer.is_seller or viewer.operator,
        "steps": steps,
        "codes": codes if acts or viewer.operator else set(),
        "payments": payments,
        "refunds": refunds,
        "open_bank": open_bank,
        "pickups": pickups,
        "weighings": weighings,
        "manifest": manifest,
        "manifest_roles": manifest_roles,
        "ratings": ratings,
        "timeline": _timeline(deal, payments, manifest, trace, viewer),
        "trace_code": deal.trace_chain.code if deal.trace_chain_id else "",
        "can_dispute": can_dispute,
        "can_rebook": can_rebook,
        "can_pay": acts and viewer.is_buyer and ("pay" in codes or "top_up" in codes),
        "bank": _bank(),
        "tolerance_pct": (settings.DEALS_WEIGHT_TOLERANCE * 100).normalize(),
        "stripe_return": request.GET.get("redirect_status", ""),
        "slip_form": forms.get("slip") or SlipForm(auto_id="slip_%s"),
        "pickup_form": forms.get("pickup") or PickupForm(auto_id="pickup_%s", deal=deal),
        "weighing_form": forms.get("weighing") or WeighingForm(auto_id="weigh_%s"),
        "dispute_form": forms.get("dispute") or DisputeForm(auto_id="dispute_%s"),
        "manifest_form": forms.get("manifest")
        or ManifestForm(auto_id="manifest_%s", initial={"shipped_on": timezone.localdate()}),
        "rating_form": forms.get("rating") or RatingForm(auto_id="rating_%s"),
        "resolve_form": forms.get("resolve") or ResolveForm(auto_id="resolve_%s"),
        "open_forms": set(forms),
    }
    # A form posted from a page that no longer shows it (the step is done, or the poster is not the
    # party it belongs to): its errors are shown above the page instead.
    shown = {
        "pickup": "pickup" in codes or can_rebook,
        "weighing": "weigh" in codes,
        "dispute": "confirm_weight" in codes or can_dispute,
        "manifest": "manifest" in codes,
        "rating": "rate" in codes,
        "resolve": "resolve" in codes,
        "slip": context["can_pay"] and open_bank is not None and open_bank.status == PaymentStatus.PENDING,
    }
    context["refusals"] = [
        text
        for key, form in forms.items()
        if not shown.get(key, False)
        for errors in form.errors.values()
        for text in errors
    ]
    if deal.status == DealStatus.PICKUP_SCHEDULED and "pickup" not in forms:
        latest = pickups[0] if pickups else None
        if latest is not None:
            context["pickup_form"].initial.update(
                {
                    "vehicle_plate": latest.vehicle_plate,
                    "driver_name": latest.driver_name,
                    "driver_phone": latest.driver_phone,
                }
            )
    return context


def _bank() -> dict:
    return {
        "name": settings.PLATFORM_BANK_NAME,
        "account": settings.PLATFORM_BANK_ACCOUNT,
        "holder": settings.PLATFORM_ACCOUNT_NAME,
    }


def _deal_page(request, deal: Deal, *, forms: dict | None = None, status: int = 200):
    return render(
        request, "frontend/deals/deal_detail.html", _deal_context(request, deal, forms), status=status
    )


@login_required
@require_GET
def deal_detail(request, pk):
    return _deal_page(request, _deal_get(request, pk))


def _form_action(
    request, deal: Deal, *, key: str, form_class, call, success, anchor: str, files=False, form_kw=None
):
    """The pattern of every form of the deal page: check the form, call the service, redirect back
    with ``success`` (a text, or a function of what the service returned); a refusal re-renders the
    page with the form and its errors, answered with the refusal's status."""
    form = form_class(request.POST, request.FILES if files else None, auto_id=f"{key}_%s", **(form_kw or {}))
    status = 400
    if form.is_valid():
        try:
            result = call(deal, form.cleaned_data)
        except ValidationError as exc:
            _refusal_apply(form, exc)
        except (DealRefused, PermissionDenied) as exc:
            _refusal_apply(form, exc)
            status = _refusal_status(exc)
        else:
            messages.success(request, success(result) if callable(success) else success)
            return redirect(_deal_url(deal, anchor))
    return _deal_page(request, deal, forms={key: form}, status=status)


def _button_action(request, pk, *, call, success, anchor: str = ""):
    """A one-button action: the service's refusal is shown as a message on the deal's page."""
    deal = _deal_get(request, pk)
    try:
        result = call(deal)
    except (DealRefused, PermissionDenied, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(request, success(result) if callable(success) else success)
    return redirect(_deal_url(deal, anchor))


@login_required
@require_POST
def deal_pickup(request, pk):
    deal = _deal_get(request, pk)
    return _form_action(
        request, deal, key="pickup", form_class=PickupForm, anchor="pickup", form_kw={"deal": deal},
        call=lambda deal, data: services.pickup_book(actor=request.user, deal=deal, ip=client_ip(request), **data),
        success=_("提货已预约，卖方会收到通知。"),
    )  # fmt: skip


@login_required
@require_POST
def deal_weigh(request, pk):
    def call(deal, data):
        return services.weighing_record(
            actor=request.user, deal=deal, ticket_no=data["ticket_no"], gross_t=data["gross_t"],
            tare_t=data["tare_t"], weighed_at=data.get("weighed_at"), ticket=data.get("ticket"),
            ip=client_ip(request),
        )  # fmt: skip

    def success(weighing):
        if weighing.status == WeighingStatus.AWAITING:
            return _("过磅结果已录入：净重 %(net)s 吨与合同数量相差 %(pct)s%%，超出允差，需由对方确认。") % {
                "net": _qty(weighing.net_t),
                "pct": number_format((weighing.difference * 100).quantize(Decimal("0.01"))),
            }
        return _("过磅结果已录入：净重 %(net)s 吨，在允差内，已按过磅结果计算结算金额。") % {
            "net": _qty(weighing.net_t)
        }

    return _form_action(
        request, _deal_get(request, pk), key="weighing", form_class=WeighingForm, call=call, success=success,
        anchor="weighing", files=True,
    )  # fmt: skip


@login_required
@require_POST
def deal_confirm(request, pk):
    """The other party confirms a weighing beyond the tolerance; after settlement the buyer confirms
    receipt, which completes the deal."""

    def success(deal):
        if deal.status == DealStatus.COMPLETED:
            return _("已确认收货，交易完成。欢迎评价对方。")
        return _("已确认过磅结果。")

    return _button_action(
        request, pk, call=lambda deal: services.deal_confirm(actor=request.user, deal=deal, ip=client_ip(request)),
        success=success,
    )  # fmt: skip


@login_required
@require_POST
def deal_dispute(request, pk):
    return _form_action(
        request, _deal_get(request, pk), key="dispute", form_class=DisputeForm, anchor="",
        call=lambda deal, data: services.deal_dispute(
            actor=request.user, deal=deal, reason=data["reason"], ip=client_ip(request)
        ),
        success=_("异议已提交，平台将介入处理。"),
    )  # fmt: skip


@login_required
@require_POST
def deal_manifest_create(request, pk):
    return _form_action(
        request, _deal_get(request, pk), key="manifest", form_class=ManifestForm, anchor="manifest",
        call=lambda deal, data: services.manifest_create(
            actor=request.user, deal=deal, ip=client_ip(request), **data
        ),
        success=_("转移联单已填写，请各方确认。"),
    )  # fmt: skip


@login_required
@require_POST
def deal_manifest_confirm(request, pk):
    role = request.POST.get("role", "")
    return _button_action(
        request, pk, anchor="manifest",
        call=lambda deal: services.manifest_confirm(actor=request.user, deal=deal, role=role, ip=client_ip(request)),
        success=lambda m: _("已确认转移联单，三方均已确认。") if m.status == ManifestStatus.COMPLETED
        else _("已确认转移联单。"),
    )  # fmt: skip


@login_required
@require_POST
def deal_rate(request, pk):
    return _form_action(
        request, _deal_get(request, pk), key="rating", form_class=RatingForm, anchor="ratings",
        call=lambda deal, data: services.rating_create(
            actor=request.user, deal=deal, score=data["score"], comment=data["comment"], ip=client_ip(request)
        ),
        success=_("感谢您的评价。"),
    )  # fmt: skip


@login_required
@require_POST
def deal_runner_up(request, pk):
    def success(award):
        new = Deal.objects.filter(award=award).only("pk", "number").first()
        return _("已将标的转给下一位竞买人，新合同 %(number)s 已生成。") % {
            "number": new.number if new else ""
        }

    return _button_action(
        request, pk, call=lambda deal: services.runner_up_offer(actor=request.user, deal=deal, ip=client_ip(request)),
        success=success,
    )  # fmt: skip


@login_required
@require_POST
def deal_resolve(request, pk):
    def call(deal, data):
        return services.dispute_resolve(
            actor=request.user, deal=deal, decision=data["decision"], reason=data["reason"],
            net_t=data.get("net_t") if data["decision"] == "weight" else None, against=data.get("against") or "",
            ip=client_ip(request),
        )  # fmt: skip

    return _form_action(
        request, _deal_get(request, pk), key="resolve", form_class=ResolveForm, call=call, anchor="",
        success=_("争议已裁定，双方会收到通知。"),
    )  # fmt: skip


# --- payments -------------------------------------------------------------------------------


def _stripe_ready() -> bool:
    return stripe_gateway.enabled() and bool(getattr(settings, "STRIPE_PUBLISHABLE_KEY", ""))


def _pay_page(request, deal: Deal, *, form=None, slip_form=None, status=200):
    viewer = _viewer(request, deal)
    if not viewer.is_buyer:
        raise PermissionDenied(_("只有合同的买方可以付款。"))
    balance = selectors.deal_balance(deal)
    payments = list(selectors.deal_payments(deal))
    open_bank = next(
        (
            p
            for p in reversed(payments)
            if p.method == PaymentMethod.BANK_TRANSFER and p.status in OPEN_PAYMENT
        ),
        None,
    )
    stripe_payment = None
    stripe_ready = _stripe_ready()
    if stripe_ready:
        wanted = request.GET.get("payment", "")
        candidates = [
            p
            for p in payments
            if p.method == PaymentMethod.STRIPE
            and p.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
            and p.client_secret
            and p.amount == balance.due
        ]
        stripe_payment = next((p for p in candidates if str(p.pk) == wanted), None) or (
            candidates[-1] if candidates else None
        )
    context = {
        "deal": deal,
        "viewer": viewer,
        "balance": balance,
        "open_bank": open_bank,
        "stripe_ready": stripe_ready,
        "stripe_payment": stripe_payment,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY if stripe_ready else "",
        "stripe_return_url": request.build_absolute_uri(_deal_url(deal)),
        "form": form or PayForm(stripe=stripe_ready),
        "slip_form": slip_form or SlipForm(auto_id="slip_%s"),
        "bank": _bank(),
        "payable": deal.status in (DealStatus.AWAITING_PAYMENT, DealStatus.WEIGHED) and balance.due > 0,
        "can_act": viewer.can_act,
    }
    return render(request, "frontend/deals/pay.html", context, status=status)


@login_required
def deal_pay(request, pk):
    """The payment page: what is due and how to pay it. Posting a method starts a payment (a retry
    returns the one already started): bank transfer shows the platform's account and the reference;
    online payment (when Stripe is set up) shows Stripe's payment element for the intent's secret."""
    deal = _deal_get(request, pk)
    if request.method != "POST":
        return _pay_page(request, deal)
    form = PayForm(request.POST, stripe=_stripe_ready())
    if not form.is_valid():
        return _pay_page(request, deal, form=form, status=400)
    try:
        payment = services.payment_start(
            actor=request.user, deal=deal, method=form.cleaned_data["method"], ip=client_ip(request)
        )
    except (DealRefused, PermissionDenied, ValidationError) as exc:
        _refusal_apply(form, exc)
        return _pay_page(request, deal, form=form, status=_refusal_status(exc))
    url = reverse("frontend:deal_pay", args=[deal.pk])
    if payment.method == PaymentMethod.STRIPE:
        return redirect(f"{url}?payment={payment.pk}")
    messages.success(
        request,
        _("请按下方账户转账 ¥%(amount)s，附言填写 %(reference)s，转账后上传凭证。")
        % {"amount": _yuan(payment.amount), "reference": payment.reference},
    )
    return redirect(url)


def _payment_get(deal: Deal, payment_id) -> Payment:
    return get_object_or_404(Payment.objects.select_related("payer"), pk=payment_id, deal=deal)


@login_required
@require_POST
def deal_slip(request, pk, payment_id):
    deal = _deal_get(request, pk)
    payment = _payment_get(deal, payment_id)
    form = SlipForm(request.POST, request.FILES, auto_id="slip_%s")
    status = 400
    if form.is_valid():
        try:
            services.payment_slip_submit(
                actor=request.user, payment=payment, slip=form.cleaned_data["slip"], ip=client_ip(request)
            )
        except ValidationError as exc:  # the file itself (type, size)
            if hasattr(exc, "error_dict"):
                form_errors_apply(form, exc)
            else:
                form.add_error("slip", exc)
        except (DealRefused, PermissionDenied) as exc:
            form.add_error(None, _refusal_text(exc))
            status = _refusal_status(exc)
        else:
            messages.success(request, _("转账凭证已提交，卖方核对到账后合同即为已付款。"))
            return redirect(_deal_url(deal, "payments"))
    if _viewer(request, deal).is_buyer:
        return _pay_page(request, deal, slip_form=form, status=status)
    return _deal_page(request, deal, forms={"slip": form}, status=status)


@login_required
@require_POST
def deal_payment_confirm(request, pk, payment_id):
    deal = _deal_get(request, pk)
    payment = _payment_get(deal, payment_id)
    try:
        services.payment_confirm(actor=request.user, payment=payment, ip=client_ip(request))
    except (DealRefused, PermissionDenied, ValidationError) as exc:
        messages.error(request, _refusal_text(exc))
    else:
        messages.success(request, _("已确认收到转账 ¥%(amount)s。") % {"amount": _yuan(payment.amount)})
    return redirect(_deal_url(deal, "payments"))


def _file_response(field, *, name: str):
    if not field:
        raise Http404
    handle = stored_open(field)
    extension = field.name.rsplit(".", 1)[-1].lower() if "." in field.name else "bin"
    types = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
    response = FileResponse(
        handle, filename=f"{name}.{extension}", content_type=types.get(extension, "application/octet-stream")
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _files_require(request, deal: Deal) -> None:
    """Slips and weighbridge tickets: the parties and the operators, nobody else."""
    viewer = _viewer(request, deal)
    if not (viewer.party or viewer.operator):
        raise Http404


@login_required
@require_GET
def deal_slip_file(request, pk, payment_id):
    deal = _deal_get(request, pk)
    _files_require(request, deal)
    payment = _payment_get(deal, payment_id)
    return _file_response(payment.slip, name=f"{deal.number}-slip-{payment.pk}")


@login_required
@require_GET
def deal_ticket_file(request, pk, weighing_id):
    deal = _deal_get(request, pk)
    _files_require(request, deal)
    weighing = get_object_or_404(Weighing, pk=weighing_id, deal=deal)
    return _file_response(weighing.ticket, name=f"{deal.number}-ticket-{weighing.pk}")


# --- printable documents --------------------------------------------------------------------


def _print_context(request, deal: Deal) -> dict:
    code = deal.trace_chain.code if deal.trace_chain_id else ""
    url = _trace_url(request, code) if code else ""
    amount = deal.final_amount if deal.final_amount is not None else deal.amount
    return {
        "deal": deal,
        "unit_label": _unit_label(deal.unit),
        "category_label": category_name(deal.category),
        "parties": [(_("卖方"), deal.seller), (_("买方"), deal.buyer)],
        "trace_code": code,
        "trace_url": url,
        "qr": _qr_svg(url) if url else "",
        "amount_upper": rmb_upper(deal.amount),
        "final_upper": rmb_upper(deal.final_amount) if deal.final_amount is not None else "",
        "amount_shown": amount,
        "fee_rate_pct": (deal.fee_rate * 100).normalize(),
        "tolerance_pct": (settings.DEALS_WEIGHT_TOLERANCE * 100).normalize(),
        "payment_days": settings.DEALS_PAYMENT_DAYS,
        "bank": _bank(),
        "printed_at": timezone.now(),
    }


@login_required
@require_GET
def deal_contract(request, pk):
    deal = _deal_get(request, pk)
    return render(request, "frontend/deals/contract_print.html", _print_context(request, deal))


@login_required
@require_GET
def deal_manifest_print(request, pk):
    deal = _deal_get(request, pk)
    manifest = selectors.deal_manifest(deal) if deal.hazardous else None
    if manifest is None:
        raise Http404
    context = _print_context(request, deal)
    context["manifest"] = manifest
    return render(request, "frontend/deals/manifest_print.html", context)


# --- the public trace page ------------------------------------------------------------------


@require_GET
def trace_lookup(request):
    """Enter a trace code (printed beside the QR code of a contract or manifest)."""
    form = TraceLookupForm(request.GET or None)
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            chain = selectors.trace_chain_by_code(form.cleaned_data["code"])
            if chain is not None:
                return redirect("frontend:trace", chain.code)
            form.add_error("code", _("没有找到这个追溯码，请核对后重试。"))
            status = 404
    return render(request, "frontend/deals/trace_lookup.html", {"form": form}, status=status)


@require_GET
def trace_page(request, code):
    chain = selectors.trace_chain_by_code(code)
    if chain is None:
        raise Http404
    if chain.code != code:
        return redirect("frontend:trace", chain.code)
    check = selectors.trace_verify(chain)
    entries = list(selectors.trace_entries(chain))
    url = _trace_url(request, chain.code)
    context = {
        "chain": chain,
        "rows": trace_rows(entries, first_broken=check.first_broken),
        "check": check,
        "broken_n": check.first_broken + 1 if check.first_broken is not None else None,
        "trace_url": url,
        "qr": _qr_svg(url),
        "form": TraceLookupForm(initial={"code": chain.code}),
    }
    return render(request, "frontend/deals/trace.html", context)


__all__ = [
    "deal_confirm",
    "deal_contract",
    "deal_detail",
    "deal_dispute",
    "deal_manifest_confirm",
    "deal_manifest_create",
    "deal_manifest_print",
    "deal_pay",
    "deal_payment_confirm",
    "deal_pickup",
    "deal_rate",
    "deal_resolve",
    "deal_runner_up",
    "deal_slip",
    "deal_slip_file",
    "deal_ticket_file",
    "deal_weigh",
    "my_deals",
    "rmb_upper",
    "trace_lookup",
    "trace_page",
]
