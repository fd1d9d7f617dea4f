"""Pages of listings: the search hall, a lot's page, drafting and editing lots, media, my lots,
wanted listings and offers, saved searches.

Thin, like ``frontend/views.py``: reads through ``listings.selectors`` and the search backend,
writes through ``listings.services``. A service's ``PermissionDenied`` renders 403 with its
message; its ``ValidationError`` is copied onto the form (status 400, each message beside its
field) or, for one-button actions, shown as a message on the page it returns to.
"""

import math
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from frontend.forms import form_errors_apply
from frontend.forms_listings import (
    SPEC_PREFIX,
    LotForm,
    LotSearchForm,
    MediaForm,
    OfferForm,
    SavedSearchForm,
    WantedForm,
    WithdrawForm,
    category_name,
    spec_choices,
    spec_initial,
    spec_label,
)
from listings import selectors, services
from listings.models import Category, LotStatus, MediaKind, TradeMode, WantedListing, WantedStatus
from market.accounts.models import Organisation
from market.accounts.selectors import membership_of
from market.core.audit import client_ip
from market.core.models import Region
from market.core.regions import region_code_prefix

# Filters of the search page whose values are shown as removable chips.
SEARCH_FILTERS = (
    "q",
    "category",
    "region",
    "zone",
    "qmin",
    "qmax",
    "pmin",
    "pmax",
    "mode",
    "hazardous",
    "closing_within",
    "km",
)
# Parameters of the search without a control of their own on the page.
PARAM_LABELS = {
    "page": gettext_lazy("页码"),
    "page_size": gettext_lazy("每页条数"),
    "zone": gettext_lazy("经济区"),
    "lat": gettext_lazy("纬度"),
    "lon": gettext_lazy("经度"),
    "km": gettext_lazy("距离（公里）"),
}
PAGE_WINDOW = 2


# --- helpers --------------------------------------------------------------------------------


def _plain(number):
    """A Decimal without trailing zeros and never in exponent form (500.000 -> 500, 1.500 -> 1.5)."""
    if number is None:
        return None
    return number.quantize(1) if number == number.to_integral_value() else number.normalize()


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _acting_organisation(request) -> Organisation | None:
    membership = getattr(request, "acting_membership", None)
    if membership is None or not getattr(membership, "pk", None):
        return None
    return membership.organisation


def _acting_organisation_require(request) -> Organisation:
    organisation = _acting_organisation(request)
    if organisation is None:
        raise PermissionDenied(_("请先登记或加入一个单位。"))
    return organisation


# The services decide; pages check the same rules before showing a form, so that a refused person
# sees 403 with the reason rather than a form they cannot submit.
_seller_require = services.seller_require
_buyer_require = services.buyer_require


def _lot_visible(request, pk):
    lot = selectors.lot_visible_get(request.user, pk)
    if lot is None:
        raise Http404
    return lot


def _lot_url(lot, anchor: str = "") -> str:
    url = reverse("frontend:lot", args=[lot.pk])
    return f"{url}#{anchor}" if anchor else url


def _regions_complete(regions) -> dict[str, Region]:
    """Load the provinces above the given counties in one query, so ``full_name`` needs none;
    returns the provinces loaded, for others on the page to reuse."""
    missing = {
        r.parent.parent_id
        for r in regions
        if r.parent_id
        and r.parent is not None
        and r.parent.parent_id
        and "parent" not in r.parent._state.fields_cache
    }
    if not missing:
        return {}
    found = Region.objects.in_bulk(list(missing))
    for region in regions:
        parent = region.parent
        if parent is not None and parent.parent_id in found:
            parent.parent = found[parent.parent_id]
    return found


def _first_photo(lot):
    for media in lot.media.all():
        if media.kind == MediaKind.PHOTO:
            return media
    return None


def _labelled(items: list) -> list:
    """Set ``category_label`` (the category's name in the page's language) on each item."""
    for item in items:
        item.category_label = category_name(item.category)
    return items


def _categories() -> list[Category]:
    return list(selectors.categories_active())


def _category_or_none(code) -> Category | None:
    code = str(code or "").strip()
    if not code:
        return None
    return selectors.categories_active().filter(pk=code).first()


# --- search ---------------------------------------------------------------------------------


def _params_url(params: dict, **changes) -> str:
    """The search URL with ``params`` changed (a value of None removes the parameter); any change
    of filters goes back to the first page."""
    merged = {k: v for k, v in params.items() if v not in (None, "")}
    if "page" not in changes:
        merged.pop("page", None)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    query = urlencode({k: str(v) for k, v in merged.items()}, doseq=False)
    base = reverse("frontend:lot_search")
    return f"{base}?{query}" if query else base


def _params_of(query) -> dict:
    return {k: v for k, v in query.to_params().items() if v not in (None, "", [])}


def _facets(result, params: dict, categories: list[Category], known: dict | None = None) -> dict:
    names = {c.code: category_name(c) for c in categories}
    facet_category = [
        {
            "code": code,
            "name": names.get(code, code),
            "count": count,
            "url": _params_url(params, category=code),
            "active": params.get("category") == code,
        }
        for code, count in result.facets.get("category", [])
    ]
    province_codes = [code for code, _count in result.facets.get("province", [])]
    regions = dict(known or {})
    if set(province_codes) - set(regions):
        regions.update(Region.objects.in_bulk([c for c in province_codes if c not in regions]))
    facet_province = [
        {
            "code": code,
            "name": regions[code].name if code in regions else code,
            "count": count,
            "url": _params_url(params, region=code),
            "active": str(params.get("region", "")) == code,
        }
        for code, count in result.facets.get("province", [])
    ]
    modes = dict(TradeMode.choices)
    facet_mode = [
        {
            "code": mode,
            "name": modes.get(mode, mode),
            "count": count,
            "url": _params_url(params, mode=mode),
            "active": params.get("mode") == mode,
        }
        for mode, count in result.facets.get("trade_mode", [])
    ]
    return {"category": facet_category, "province": facet_province, "trade_mode": facet_mode}


def _filter_chips(form: LotSearchForm, params: dict) -> list[dict]:
    """The active filters, each with a link that removes it."""
    chips = []
    for name in SEARCH_FILTERS:
        value = params.get(name)
        if value in (None, ""):
            continue
        field = form.fields.get(name)
        label = field.label if field is not None else PARAM_LABELS.get(name, name)
        shown = str(value)
        if field is not None and hasattr(field, "choices"):
            for choice_value, choice_label in field.choices:
                if isinstance(choice_label, (list, tuple)):
                    match = [lbl for v, lbl in choice_label if v == shown]
                    if match:
                        shown = str(match[0])
                        break
                elif choice_value == shown:
                    shown = str(choice_label).strip()
                    break
        # A distance makes sense only with its point: removing it removes all three.
        removed = {"km": None, "lat": None, "lon": None} if name == "km" else {name: None}
        chips.append({"label": label, "value": shown.strip(), "url": _params_url(params, **removed)})
    return chips


def _pages(page: int, pages: int) -> list:
    """Page numbers around the current one, with None for a gap."""
    wanted = {1, pages, *range(page - PAGE_WINDOW, page + PAGE_WINDOW + 1)}
    out, last = [], 0
    for n in sorted(p for p in wanted if 1 <= p <= pages):
        if n - last > 1:
            out.append(None)
        out.append(n)
        last = n
    return out


def _search_errors_apply(form: LotSearchForm, exc: ValidationError) -> None:
    """The search's errors beside the filters; a parameter without a control (page, distance…) is
    named in the message above the form."""
    by_name = exc.error_dict if hasattr(exc, "error_dict") else {None: exc.error_list}
    for name, errors in by_name.items():
        for error in errors:
            if name in form.fields:
                form.add_error(name, error)
            else:
                label = PARAM_LABELS.get(name, name or "")
                text = " ".join(error.messages)
                form.add_error(
                    None, _("%(label)s：%(text)s") % {"label": label, "text": text} if label else text
                )


def _search_page(request, data: QueryDict, *, saved_form=None, status=200):
    from listings.search import LotQuery, SearchUnavailable, get_backend

    categories = _categories()
    form = LotSearchForm(data, categories=categories)
    form.is_valid()  # every field is optional text; the search checks the values
    context = {
        "form": form,
        "filter_selects": [form["mode"], form["hazardous"], form["closing_within"]],
        "lots": [],
        "result": None,
        "facets": None,
        "chips": [],
        "params": {},
    }
    try:
        query = LotQuery.from_params(data)
    except ValidationError as exc:
        _search_errors_apply(form, exc)
        context["search_error"] = True
        return render(request, "frontend/lots/search.html", context, status=400)

    try:
        result = get_backend().search(query)
    except SearchUnavailable:
        context["search_unavailable"] = True
        return render(request, "frontend/lots/search.html", context, status=503)
    lots = selectors.lots_by_ids(result.ids)
    provinces = _regions_complete([lot.region for lot in lots])
    for lot in lots:
        lot.thumb = _first_photo(lot)
        lot.category_label = category_name(lot.category)
    params = _params_of(query)
    page_size = result.page_size or 1
    pages = max(1, math.ceil(result.total / page_size))
    context.update(
        {
            "lots": lots,
            "result": result,
            "params": params,
            "facets": _facets(result, params, categories, known=provinces),
            "chips": _filter_chips(form, params),
            "pages": [
                {"n": n, "url": _params_url(params, page=n), "current": n == result.page} if n else None
                for n in _pages(result.page, pages)
            ]
            if pages > 1
            else [],
            "page_count": pages,
            "prev_url": _params_url(params, page=result.page - 1) if result.page > 1 else "",
            "next_url": _params_url(params, page=result.page + 1) if result.page < pages else "",
            "query_string": urlencode({k: str(v) for k, v in params.items() if k not in ("page",)}),
            "first_result": (result.page - 1) * page_size + 1 if result.total else 0,
            "last_result": min(result.total, result.page * page_size),
        }
    )
    if request.user.is_authenticated and _acting_organisation(request) is not None:
        context["saved_form"] = saved_form or SavedSearchForm(initial={"query": context["query_string"]})
    return render(request, "frontend/lots/search.html", context, status=status)


@require_GET
def lot_search(request):
    return _search_page(request, request.GET)


# --- a lot's page ---------------------------------------------------------------------------


def _spec_rows(lot) -> list[dict]:
    schema = selectors.schema_effective(lot.category)
    specs = dict(lot.specs or {})
    rows = []
    for spec in schema:
        if spec["key"] not in specs:
            continue
        value = specs.pop(spec["key"])
        kind = spec.get("type")
        if kind == "bool":
            value = _("是") if value in (True, "true", "True", 1, "1") else _("否")
        elif kind == "choice":
            value = dict(spec_choices(spec)).get(str(value), value)
        rows.append({"label": spec_label(spec), "value": value, "unit": spec.get("unit") or ""})
    # Specs no longer in the schema are still shown, under their key.
    rows += [{"label": key, "value": value, "unit": ""} for key, value in specs.items()]
    return rows


def _lot_page(request, lot, *, media_form=None, withdraw_form=None, trading=None, status=200):
    """``trading``: forms and a refusal for the trading panel (see ``views_trading.trading_context``)."""
    from frontend.views_trading import trading_context

    membership = membership_of(request.user, lot.seller) if request.user.is_authenticated else None
    can_trade = bool(membership and membership.can_trade)
    media = list(lot.media.all())
    lot.category_label = category_name(lot.category)
    context = {
        "lot": lot,
        "ancestors": [
            {"code": c.code, "label": category_name(c)} for c in selectors.category_ancestors(lot.category)
        ],
        "spec_rows": _spec_rows(lot),
        "photos": [m for m in media if m.kind == MediaKind.PHOTO],
        "documents": [m for m in media if m.kind == MediaKind.DOCUMENT],
        "membership": membership,
        "is_seller": membership is not None,
        "can_trade": can_trade,
    }
    if can_trade:
        editable = lot.status in (LotStatus.DRAFT, LotStatus.SUBMITTED)
        context.update(
            {
                "can_edit": editable,
                "can_submit": lot.status == LotStatus.DRAFT,
                "can_withdraw": lot.status in (LotStatus.DRAFT, LotStatus.SUBMITTED, LotStatus.PUBLISHED)
                and not lot.bid_count,
                "can_upload": lot.status in (LotStatus.DRAFT, LotStatus.SUBMITTED, LotStatus.PUBLISHED),
                "can_remove_media": editable,
                "media_form": media_form or MediaForm(),
                "withdraw_form": withdraw_form or WithdrawForm(),
            }
        )
    context.update(trading_context(request, lot, seller_membership=membership, **(trading or {})))
    return render(request, "frontend/lots/detail.html", context, status=status)


def lot_detail(request, pk):
    return _lot_page(request, _lot_visible(request, pk))


@require_GET
def lot_media_list(request, pk):
    """The media section of a lot's page alone (reloaded by upload.ts after uploading)."""
    lot = _lot_visible(request, pk)
    membership = membership_of(request.user, lot.seller) if request.user.is_authenticated else None
    media = list(lot.media.all())
    context = {
        "lot": lot,
        "photos": [m for m in media if m.kind == MediaKind.PHOTO],
        "documents": [m for m in media if m.kind == MediaKind.DOCUMENT],
        "can_remove_media": bool(membership and membership.can_trade)
        and lot.status in (LotStatus.DRAFT, LotStatus.SUBMITTED),
        "is_seller": membership is not None,
    }
    return render(request, "frontend/lots/_media.html", context)


# --- drafting and editing -------------------------------------------------------------------


def _schema_for(category: Category | None) -> list[dict]:
    return selectors.schema_effective(category) if category is not None else []


def _lot_form_page(request, form, *, category, lot=None, status=200):
    context = {
        "form": form,
        "lot": lot,
        "creating": lot is None,
        "category": category,
        "organisation": lot.seller if lot is not None else _acting_organisation(request),
    }
    return render(request, "frontend/lots/form.html", context, status=status)


@login_required
def lot_create(request):
    organisation = _acting_organisation_require(request)
    _seller_require(request.user, organisation)
    categories = _categories()
    data = request.POST if request.method == "POST" else None
    category = _category_or_none((data or request.GET).get("category"))
    form = LotForm(
        data,
        categories=categories,
        schema=_schema_for(category),
        initial={
            "category": category.code if category else "",
            "region": organisation.region_id,
            "available_from": timezone.localdate(),
            "pickup_by": timezone.localdate() + timedelta(days=30),
        },
    )
    if data is None or "refresh" in data:
        return _lot_form_page(request, form, category=category)
    if form.is_valid():
        try:
            lot = services.lot_create(
                actor=request.user, organisation=organisation, ip=client_ip(request), **form.service_values()
            )
        except ValidationError as exc:
            form_errors_apply(form, exc, form.error_map(exc))
        else:
            messages.success(request, _("草稿已保存。下一步：上传现场照片，然后提交审核。"))
            return redirect(_lot_url(lot, "media"))
    return _lot_form_page(request, form, category=category, status=400)


def _lot_changes(lot, values: dict) -> dict:
    """The fields whose value differs from the lot's (the audit log names only those)."""
    current = {
        "category": lot.category_id,
        "title": lot.title,
        "quantity": lot.quantity,
        "unit": lot.unit,
        "region": lot.region_id,
        "address": lot.address,
        "available_from": lot.available_from,
        "pickup_by": lot.pickup_by,
        "packaging": lot.packaging,
        "description": lot.description,
    }
    changes = {name: value for name, value in values.items() if name != "specs" and current[name] != value}
    stored = {k: str(v) for k, v in (lot.specs or {}).items()}
    given = {k: str(v) for k, v in values["specs"].items()}
    if stored != given or "category" in changes:
        changes["specs"] = values["specs"]
    return changes


@login_required
def lot_edit(request, pk):
    lot = _lot_visible(request, pk)
    _seller_require(request.user, lot.seller)
    if lot.status not in (LotStatus.DRAFT, LotStatus.SUBMITTED):
        messages.error(
            request,
            _("“%(status)s”的标的不能修改；如需更改，请撤回后重新挂牌。")
            % {"status": lot.get_status_display()},
        )
        return redirect(_lot_url(lot))
    categories = _categories()
    if request.method == "POST":
        category = _category_or_none(request.POST.get("category"))
        form = LotForm(request.POST, categories=categories, schema=_schema_for(category))
        if "refresh" in request.POST:
            return _lot_form_page(request, form, category=category, lot=lot)
        if form.is_valid():
            changes = _lot_changes(lot, form.service_values())
            if not changes:
                messages.info(request, _("没有需要保存的修改。"))
                return redirect(_lot_url(lot))
            before = lot.status
            try:
                lot = services.lot_update(actor=request.user, lot=lot, ip=client_ip(request), **changes)
            except ValidationError as exc:
                form_errors_apply(form, exc, form.error_map(exc))
            else:
                if before == LotStatus.SUBMITTED and lot.status == LotStatus.DRAFT:
                    messages.warning(request, _("修改已保存。标的已退回草稿，请确认后重新提交审核。"))
                else:
                    messages.success(request, _("修改已保存。"))
                return redirect(_lot_url(lot))
        return _lot_form_page(request, form, category=category, lot=lot, status=400)
    category = lot.category
    schema = _schema_for(category)
    initial = {
        "category": lot.category_id,
        "title": lot.title,
        "quantity": _plain(lot.quantity),
        "unit": lot.unit,
        "region": lot.region_id,
        "address": lot.address,
        "available_from": lot.available_from,
        "pickup_by": lot.pickup_by,
        "packaging": lot.packaging,
        "description": lot.description,
        **spec_initial(schema, lot.specs),
    }
    form = LotForm(initial=initial, categories=categories, schema=schema)
    return _lot_form_page(request, form, category=category, lot=lot)


@require_GET
def lot_spec_fields(request):
    """The spec inputs of a category (``?category=<code>``), for the lot form's htmx swap; values
    typed so far (``spec_<key>``) are kept for keys the new category shares."""
    category = _category_or_none(request.GET.get("category"))
    initial = {key: value for key, value in request.GET.items() if key.startswith(SPEC_PREFIX)}
    form = LotForm(initial=initial, schema=_schema_for(category))
    return render(
        request, "frontend/lots/_spec_fields.html", {"form": form, "category": category, "oob": True}
    )


# --- lifecycle actions ----------------------------------------------------------------------


@login_required
@require_POST
def lot_submit(request, pk):
    lot = _lot_visible(request, pk)
    try:
        lot = services.lot_submit(actor=request.user, lot=lot, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        if lot.status == LotStatus.PUBLISHED:
            messages.success(request, _("标的已挂牌，买家现在可以在货源大厅检索到它。"))
        else:
            messages.success(request, _("已提交审核。平台运营人员审核通过后，标的将自动挂牌。"))
    return redirect(_lot_url(lot))


@login_required
@require_POST
def lot_withdraw(request, pk):
    lot = _lot_visible(request, pk)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return _lot_page(request, lot, withdraw_form=form, status=400)
    try:
        lot = services.lot_withdraw(
            actor=request.user, lot=lot, reason=form.cleaned_data["reason"], ip=client_ip(request)
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("标的已撤回。"))
    return redirect(_lot_url(lot))


@login_required
@require_POST
def lot_media_add(request, pk):
    """Upload without JavaScript (upload.ts posts each file to the API with a progress bar)."""
    lot = _lot_visible(request, pk)
    form = MediaForm(request.POST, request.FILES)
    if form.is_valid():
        added = 0
        for upload in form.cleaned_data["file"]:
            try:
                services.lot_media_add(
                    actor=request.user,
                    lot=lot,
                    file=upload,
                    kind=form.cleaned_data["kind"],
                    ip=client_ip(request),
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("file", _("%(label)s：%(text)s") % {"label": upload.name, "text": message})
            else:
                added += 1
        if added:
            messages.success(request, _("已上传 %(n)d 个文件。") % {"n": added})
        if not form.errors:
            return redirect(_lot_url(lot, "media"))
    return _lot_page(request, lot, media_form=form, status=400)


@login_required
@require_POST
def lot_media_remove(request, pk, media_id):
    lot = _lot_visible(request, pk)
    media = get_object_or_404(lot.media, pk=media_id)
    try:
        services.lot_media_remove(actor=request.user, media=media, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("已删除“%(name)s”。") % {"name": media.original_name or media.pk})
    return redirect(_lot_url(lot, "media"))


# --- my lots --------------------------------------------------------------------------------


@login_required
def my_lots(request):
    organisation = _acting_organisation(request)
    context = {"organisation": organisation, "statuses": LotStatus.choices}
    if organisation is not None:
        lots = selectors.lots_of(organisation)
        counts = dict(lots.order_by().values_list("status").annotate(n=Count("id")))
        status = request.GET.get("status", "")
        if status not in LotStatus.values:
            status = ""
        context.update(
            {
                "status": status,
                "counts": counts,
                "total": sum(counts.values()),
                "tabs": [(value, label, counts.get(value, 0)) for value, label in LotStatus.choices],
                "lots": _labelled(list(lots.filter(status=status) if status else lots)),
                "can_list": organisation.is_generator,
            }
        )
    return render(request, "frontend/lots/mine.html", context)


# --- wanted listings ------------------------------------------------------------------------


def _wanted_filtered(data):
    qs = selectors.wanted_open()
    errors = {}
    category = (data.get("category") or "").strip()
    if category:
        # The category and its descendants (codes are dotted paths); lookups go through the
        # related primary key, as a ForeignKey takes no ``startswith``.
        qs = qs.filter(Q(category_id=category) | Q(category__code__startswith=f"{category}."))
    region = (data.get("region") or "").strip()
    if region:
        prefix = region_code_prefix(region)
        if prefix is None:
            errors["region"] = _("行政区划代码不存在。")
        else:
            # A listing without a region takes goods from anywhere.
            qs = qs.filter(Q(region__code__startswith=prefix) | Q(region__isnull=True))
    return qs.order_by("deadline", "id"), errors


def _offer_context(request, organisation) -> dict:
    """Whether the acting organisation may offer (a verified seller's trader), and why not."""
    if not request.user.is_authenticated:
        return {"offer_state": "anonymous"}
    if organisation is None or not organisation.is_generator:
        return {"offer_state": "not_seller"}
    membership = membership_of(request.user, organisation)
    if membership is None or not membership.can_trade:
        return {"offer_state": "viewer"}
    if not organisation.is_verified:
        return {"offer_state": "unverified"}
    return {"offer_state": "ok"}


def wanted_list(request):
    categories = _categories()
    form = WantedForm(categories=categories)
    qs, errors = _wanted_filtered(request.GET)
    organisation = _acting_organisation(request)
    wanted = [] if errors else _labelled(list(qs[:200]))
    for item in wanted:
        item.offer_form = OfferForm(
            auto_id=f"offer-{item.pk}-%s", initial={"quantity": _plain(item.quantity)}
        )
    context = {
        "category_choices": form.fields["category"].choices[1:],
        "region_choices": form.fields["region"].choices[1:],
        "selected_category": request.GET.get("category", ""),
        "selected_region": request.GET.get("region", ""),
        "errors": errors,
        "wanted": wanted,
        "organisation": organisation,
        **_offer_context(request, organisation),
    }
    if organisation is not None:
        context["can_post"] = organisation.is_recycler
    return render(request, "frontend/wanted/list.html", context, status=400 if errors else 200)


@login_required
def wanted_create(request):
    organisation = _acting_organisation_require(request)
    _buyer_require(request.user, organisation)
    categories = _categories()
    if request.method == "POST":
        form = WantedForm(request.POST, categories=categories)
        if form.is_valid():
            data = form.cleaned_data
            try:
                wanted = services.wanted_create(
                    actor=request.user,
                    organisation=organisation,
                    category=data["category"],
                    title=data["title"],
                    quantity=data["quantity"],
                    unit=data["unit"],
                    deadline=data["deadline"],
                    region=data["region"] or None,
                    price_min=data["price_min"],
                    price_max=data["price_max"],
                    description=data["description"],
                    ip=client_ip(request),
                )
            except ValidationError as exc:
                form_errors_apply(form, exc)
            else:
                messages.success(request, _("求购信息已发布，产废单位可以向您报价。"))
                return redirect("frontend:wanted_detail", wanted.pk)
        status = 400
    else:
        form = WantedForm(categories=categories)
        status = 200
    return render(
        request, "frontend/wanted/form.html", {"form": form, "organisation": organisation}, status=status
    )


def _wanted_page(request, wanted: WantedListing, *, offer_form=None, status=200):
    _labelled([wanted])
    organisation = _acting_organisation(request)
    buyer_membership = membership_of(request.user, wanted.buyer) if request.user.is_authenticated else None
    offers = wanted.offers.select_related("seller", "lot").order_by("created_at")
    if buyer_membership is not None or getattr(request.user, "is_operator", False):
        visible_offers = list(offers)
    elif request.user.is_authenticated:
        visible_offers = list(offers.filter(seller__memberships__user=request.user).distinct())
    else:
        visible_offers = []
    is_open = selectors.wanted_open().filter(pk=wanted.pk).exists()
    own_open_offer = any(
        o.status == "open" and organisation and o.seller_id == organisation.pk for o in visible_offers
    )
    context = {
        "wanted": wanted,
        "is_buyer": buyer_membership is not None,
        "can_withdraw": bool(buyer_membership and buyer_membership.can_trade)
        and wanted.status == WantedStatus.OPEN,
        "offers": visible_offers,
        "offer_count": offers.count(),
        "is_open": is_open,
        "own_open_offer": own_open_offer,
        "organisation": organisation,
        "offer_form": offer_form or OfferForm(initial={"quantity": _plain(wanted.quantity)}),
        **_offer_context(request, organisation),
    }
    return render(request, "frontend/wanted/detail.html", context, status=status)


def wanted_detail(request, pk):
    wanted = get_object_or_404(WantedListing.objects.select_related("buyer", "category", "region"), pk=pk)
    return _wanted_page(request, wanted)


@login_required
@require_POST
def offer_create(request, pk):
    wanted = get_object_or_404(WantedListing.objects.select_related("buyer", "category", "region"), pk=pk)
    organisation = _acting_organisation_require(request)
    form = OfferForm(request.POST)
    if form.is_valid():
        try:
            services.offer_create(
                actor=request.user,
                wanted=wanted,
                organisation=organisation,
                quantity=form.cleaned_data["quantity"],
                unit_price=form.cleaned_data["unit_price"],
                message=form.cleaned_data["message"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            messages.success(request, _("报价已发送，求购方会在报价截止前回复。"))
            return redirect(reverse("frontend:wanted_detail", args=[wanted.pk]) + "#offers")
    return _wanted_page(request, wanted, offer_form=form, status=400)


@login_required
@require_POST
def wanted_withdraw(request, pk):
    wanted = get_object_or_404(WantedListing, pk=pk)
    try:
        services.wanted_withdraw(actor=request.user, wanted=wanted, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("求购信息已撤回，收到的报价同时失效。"))
    return redirect("frontend:wanted_detail", wanted.pk)


# --- saved searches -------------------------------------------------------------------------


@login_required
def saved_searches(request):
    searches = list(selectors.saved_searches_of(request.user).select_related("organisation"))
    categories = {c.code: category_name(c) for c in _categories()}
    for saved in searches:
        query = {k: v for k, v in (saved.query or {}).items() if v not in (None, "", [])}
        saved.url = _params_url(query)
        summary = []
        if query.get("q"):
            summary.append(f"“{query['q']}”")
        if query.get("category"):
            summary.append(categories.get(query["category"], query["category"]))
        if query.get("region"):
            region = Region.objects.filter(pk=query["region"]).first()
            summary.append(region.full_name if region else query["region"])
        if query.get("mode"):
            summary.append(dict(TradeMode.choices).get(query["mode"], query["mode"]))
        saved.summary = " · ".join(str(s) for s in summary)
    return render(request, "frontend/lots/saved_searches.html", {"searches": searches})


@login_required
@require_POST
def saved_search_create(request):
    organisation = _acting_organisation_require(request)
    form = SavedSearchForm(request.POST)
    params = QueryDict(request.POST.get("query", ""))
    if form.is_valid():
        try:
            services.saved_search_create(
                actor=request.user,
                organisation=organisation,
                name=form.cleaned_data["name"],
                query={k: params.get(k) for k in params},
                alerts=form.cleaned_data["alerts"],
            )
        except ValidationError as exc:
            form_errors_apply(form, exc)
        else:
            name = form.cleaned_data["name"]
            if form.cleaned_data["alerts"]:
                text = _("已保存搜索“%(name)s”。有符合条件的新货源挂牌时，会通知您。")
            else:
                text = _("已保存搜索“%(name)s”。")
            messages.success(request, text % {"name": name})
            return redirect("frontend:saved_searches")
    return _search_page(request, params, saved_form=form, status=400)


@login_required
@require_POST
def saved_search_delete(request, pk):
    saved = get_object_or_404(selectors.saved_searches_of(request.user), pk=pk)
    services.saved_search_delete(actor=request.user, saved_search=saved)
    messages.success(request, _("已删除搜索“%(name)s”。") % {"name": saved.name})
    return redirect("frontend:saved_searches")
