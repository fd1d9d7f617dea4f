"""Writes of listings: lots and their lifecycle, media, wanted listings and offers, saved searches.

Lot lifecycle (``LOT_TRANSITIONS``): draft -> submitted -> published -> closed / withdrawn /
expired, with an operator (or the automatic rule for verified sellers of non-hazardous lots)
publishing, and an operator able to return a submitted lot to draft with a reason. Every move is
audited; search indexing and saved-search alerts run after commit.
"""

import io
from datetime import date
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from listings.models import (
    Category,
    Lot,
    LotMedia,
    LotStatus,
    MediaKind,
    OfferStatus,
    Packaging,
    SavedSearch,
    WantedListing,
    WantedOffer,
    WantedStatus,
)
from listings.selectors import schema_effective
from listings.specs import specs_validate
from market.accounts.models import Organisation
from market.accounts.services import member_require
from market.core.audit import audit_record
from market.core.models import Region
from market.core.notify import notify_users
from market.core.regions import region_county_require
from market.core.state import transition
from market.core.statements import Statement, execute_many, row_update_statement
from market.core.uploads import upload_check

LOT_TRANSITIONS = {
    LotStatus.DRAFT: {LotStatus.SUBMITTED, LotStatus.WITHDRAWN},
    LotStatus.SUBMITTED: {LotStatus.PUBLISHED, LotStatus.DRAFT, LotStatus.WITHDRAWN},
    LotStatus.PUBLISHED: {LotStatus.CLOSED, LotStatus.WITHDRAWN, LotStatus.EXPIRED},
    LotStatus.EXPIRED: {LotStatus.DRAFT},  # relist
    LotStatus.CLOSED: set(),
    LotStatus.WITHDRAWN: set(),
}

LOT_EDITABLE = (
    "category",
    "title",
    "description",
    "quantity",
    "unit",
    "specs",
    "region",
    "address",
    "available_from",
    "pickup_by",
    "packaging",
)
MEDIA_LIMITS = {MediaKind.PHOTO: 12, MediaKind.DOCUMENT: 10}
MEDIA_TYPES = {MediaKind.PHOTO: ("jpeg", "png"), MediaKind.DOCUMENT: ("pdf", "jpeg", "png")}
THUMBNAIL_SIZE = (480, 360)


def _field_error(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def _operator_require(actor) -> None:
    if not getattr(actor, "is_operator", False):
        raise PermissionDenied(_("只有平台运营人员可以执行此操作。"))


def seller_require(actor, organisation: Organisation):
    """A trading member of a generator (pages call it before validating a form, to answer 403)."""
    membership = member_require(actor, organisation, trade=True)
    if not organisation.is_generator:
        raise PermissionDenied(_("只有产废单位可以挂牌出售；回收利用单位请发布求购信息。"))
    return membership


def _category(code) -> Category:
    category = Category.objects.filter(pk=str(code or "").strip(), is_active=True).first()
    if category is None:
        raise _field_error("category", _("品类不存在或已停用。"), "category_unknown")
    if category.children.filter(is_active=True).exists():
        raise _field_error(
            "category", _("请选择到最细一级品类，例如“重型废钢”而不是“废钢铁”。"), "category_not_leaf"
        )
    return category


def _quantity(value, field: str = "quantity") -> Decimal:
    try:
        quantity = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise _field_error(field, _("请输入数字。"), "invalid") from None
    if not quantity.is_finite() or quantity <= 0:
        raise _field_error(field, _("数量必须大于零。"), "not_positive")
    if quantity.as_tuple().exponent < -3:
        raise _field_error(field, _("数量最多保留三位小数。"), "max_decimal_places")
    return quantity


def _lot_clean(lot: Lot) -> None:
    """Check a lot's fields together; raise one ValidationError naming every bad field."""
    errors: dict[str, list] = {}

    def add(exc: ValidationError):
        for name, errs in exc.error_dict.items():
            errors.setdefault(name, []).extend(errs)

    if lot.unit != lot.category.unit:
        add(
            _field_error(
                "unit",
                _("“%(category)s”以“%(unit)s”计量。")
                % {"category": lot.category.name, "unit": lot.category.get_unit_display()},
                "unit_mismatch",
            )
        )
    try:
        lot.specs = specs_validate(schema_effective(lot.category), lot.specs or {})
    except ValidationError as exc:
        add(exc)
    if lot.available_from and lot.pickup_by and lot.pickup_by < lot.available_from:
        add(_field_error("pickup_by", _("最迟提货日期不能早于可提货日期。"), "dates_order"))
    if lot.pickup_by and lot.pickup_by < timezone.localdate():
        add(_field_error("pickup_by", _("最迟提货日期已过。"), "date_past"))
    if lot.packaging not in Packaging.values:
        add(_field_error("packaging", _("包装方式无效。"), "invalid_choice"))
    if not (lot.title or "").strip():
        add(_field_error("title", _("请填写标题。"), "required"))
    if not (lot.address or "").strip():
        add(_field_error("address", _("请填写提货地址。"), "required"))
    if errors:
        raise ValidationError(errors)


def _after_commit_index(lot_id: int) -> None:
    from listings.tasks import lot_index

    transaction.on_commit(lambda: lot_index.delay(lot_id=lot_id), robust=True)


# --- lots -----------------------------------------------------------------------------------


def lot_create(
    *,
    actor,
    organisation: Organisation,
    category: str,
    title: str,
    quantity,
    unit: str,
    region: str,
    address: str,
    available_from: date,
    pickup_by: date,
    description: str = "",
    specs: dict | None = None,
    packaging: str = Packaging.BULK,
    ip=None,
) -> Lot:
    """A seller drafts a lot. Nothing is public until it is submitted and published."""
    seller_require(actor, organisation)
    errors = {}
    parsed = {}
    for name, parse in (
        ("category", lambda: _category(category)),
        ("quantity", lambda: _quantity(quantity)),
        ("region", lambda: region_county_require(region)),
    ):
        try:
            parsed[name] = parse()
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if errors:
        raise ValidationError(errors)
    lot = Lot(
        seller=organisation,
        created_by=actor,
        category=parsed["category"],
        title=(title or "").strip(),
        description=description or "",
        quantity=parsed["quantity"],
        unit=unit,
        specs=specs or {},
        region=parsed["region"],
        address=(address or "").strip(),
        available_from=available_from,
        pickup_by=pickup_by,
        packaging=packaging,
        hazardous=parsed["category"].hazardous,
    )
    _lot_clean(lot)
    with transaction.atomic():
        lot.save()
        audit_record(actor=actor, action="lot.create", target=lot, to_state=lot.status, ip=ip)
    return lot


def lot_update(*, actor, lot: Lot, ip=None, **changes) -> Lot:
    """Edit a draft (a submitted lot goes back to draft). Published terms are fixed: withdraw and
    relist instead, so bidders never see the goods change under them."""
    seller_require(actor, lot.seller)
    unknown = set(changes) - set(LOT_EDITABLE)
    if unknown:
        raise ValidationError(
            {name: ValidationError(_("该字段不能修改。"), code="read_only") for name in unknown}
        )
    with transaction.atomic():
        lot = Lot.objects.select_for_update().select_related("category", "seller").get(pk=lot.pk)
        if lot.status not in (LotStatus.DRAFT, LotStatus.SUBMITTED):
            raise ValidationError(
                _("“%(status)s”的标的不能修改；如需更改，请撤回后重新挂牌。")
                % {"status": lot.get_status_display()},
                code="not_editable",
            )
        errors = {}
        if "category" in changes:
            try:
                changes["category"] = _category(changes["category"])
            except ValidationError as exc:
                errors.update(exc.error_dict)
        if "quantity" in changes:
            try:
                changes["quantity"] = _quantity(changes["quantity"])
            except ValidationError as exc:
                errors.update(exc.error_dict)
        if "region" in changes:
            try:
                changes["region"] = region_county_require(changes["region"])
            except ValidationError as exc:
                errors.update(exc.error_dict)
        if errors:
            raise ValidationError(errors)
        for name, value in changes.items():
            setattr(lot, name, value)
        lot.hazardous = lot.category.hazardous
        _lot_clean(lot)
        lot.save()
        audit_record(actor=actor, action="lot.update", target=lot, ip=ip, data={"fields": sorted(changes)})
        if lot.status == LotStatus.SUBMITTED:
            _lot_move(
                lot, LotStatus.DRAFT, actor=actor, action="lot.unsubmit", reason=_("卖方修改了标的"), ip=ip
            )
    return lot


def _lot_move(lot: Lot, to: str, *, actor, action: str, reason: str = "", ip=None) -> Lot:
    lot.status_changed_at = timezone.now()
    extra = ["status_changed_at", "status_reason"]
    lot.status_reason = reason if to in (LotStatus.DRAFT, LotStatus.WITHDRAWN, LotStatus.EXPIRED) else ""
    if to == LotStatus.PUBLISHED:
        lot.published_at = lot.status_changed_at
        extra.append("published_at")
    transition(
        lot,
        field="status",
        to=to,
        table=LOT_TRANSITIONS,
        actor=actor,
        action=action,
        reason=reason,
        ip=ip,
        extra_fields=extra,
    )
    return lot


def lot_auto_publishable(lot: Lot) -> bool:
    """The automatic rule: a verified seller's non-hazardous lot needs no operator review."""
    return settings.LOTS_AUTO_PUBLISH and lot.seller.is_verified and not lot.hazardous


def _blacklist_refuse(organisation: Organisation) -> None:
    """A blacklisted organisation can neither list nor bid until an operator lifts it."""
    if organisation.is_blacklisted:
        raise ValidationError(
            _("贵单位已被列入交易黑名单（%(reason)s），不能挂牌或报价。")
            % {"reason": organisation.blacklist_reason or _("未说明原因")},
            code="blacklisted",
        )


def lot_submit(*, actor, lot: Lot, ip=None) -> Lot:
    seller_require(actor, lot.seller)
    with transaction.atomic():
        lot = Lot.objects.select_for_update().select_related("seller", "category").get(pk=lot.pk)
        if not lot.seller.is_verified:
            raise ValidationError(
                _("单位通过平台认证后才能挂牌。当前状态：%(status)s。")
                % {"status": lot.seller.get_status_display()},
                code="seller_not_verified",
            )
        _blacklist_refuse(lot.seller)
        if lot.pickup_by < timezone.localdate():
            raise _field_error("pickup_by", _("最迟提货日期已过，请修改后再提交。"), "date_past")
        _lot_move(lot, LotStatus.SUBMITTED, actor=actor, action="lot.submit", ip=ip)
        if lot_auto_publishable(lot):
            _lot_move(
                lot,
                LotStatus.PUBLISHED,
                actor=None,
                action="lot.publish",
                reason=_("自动审核：已认证卖方、非危险废物"),
            )
            _announce_published(lot)
    if lot.status == LotStatus.SUBMITTED:
        from django.contrib.auth import get_user_model

        operators = (
            get_user_model().objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)
        )
        notify_users(
            operators,
            title=_("新标的待审核：%(title)s") % {"title": lot.title},
            url=reverse("admin:listings_lot_change", args=[lot.pk]),
            email=False,
        )
    return lot


def _announce_published(lot: Lot) -> None:
    from listings.tasks import saved_searches_alert

    _after_commit_index(lot.pk)
    transaction.on_commit(lambda: saved_searches_alert.delay(lot_id=lot.pk), robust=True)


def lot_publish(*, actor, lot: Lot, ip=None) -> Lot:
    """An operator approves a submitted lot (hazardous lots always come this way)."""
    _operator_require(actor)
    with transaction.atomic():
        lot = Lot.objects.select_for_update().select_related("seller").get(pk=lot.pk)
        if not lot.seller.is_verified:
            raise ValidationError(_("卖方单位未通过认证，不能挂牌。"), code="seller_not_verified")
        _blacklist_refuse(lot.seller)
        _lot_move(lot, LotStatus.PUBLISHED, actor=actor, action="lot.publish", ip=ip)
        _announce_published(lot)
    notify_users(
        lot.seller.memberships.values_list("user_id", flat=True),
        title=_("标的“%(title)s”已通过审核并挂牌。") % {"title": lot.title},
        url=reverse("frontend:lot", args=[lot.pk]),
    )
    return lot


def lot_return(*, actor, lot: Lot, reason: str, ip=None) -> Lot:
    """An operator sends a submitted lot back to its seller with the reason."""
    _operator_require(actor)
    reason = (reason or "").strip()
    if not reason:
        raise _field_error("reason", _("请填写原因，卖方将看到此说明。"), "required")
    with transaction.atomic():
        lot = Lot.objects.select_for_update().get(pk=lot.pk)
        _lot_move(lot, LotStatus.DRAFT, actor=actor, action="lot.return", reason=reason, ip=ip)
    notify_users(
        lot.seller.memberships.values_list("user_id", flat=True),
        title=_("标的“%(title)s”未通过审核：%(reason)s") % {"title": lot.title, "reason": reason},
        url=reverse("frontend:lot", args=[lot.pk]),
    )
    return lot


def lot_withdraw(*, actor, lot: Lot, reason: str = "", ip=None) -> Lot:
    seller_require(actor, lot.seller)
    with transaction.atomic():
        lot = Lot.objects.select_for_update().get(pk=lot.pk)
        if lot.bid_count:
            raise ValidationError(_("已有出价的标的不能撤回，请联系平台运营人员。"), code="has_bids")
        was_public = lot.status == LotStatus.PUBLISHED
        _lot_move(lot, LotStatus.WITHDRAWN, actor=actor, action="lot.withdraw", reason=reason or "", ip=ip)
        if was_public:
            _after_commit_index(lot.pk)
    return lot


def lot_relist(*, actor, lot: Lot, ip=None) -> Lot:
    """An expired lot goes back to draft, so the seller can adjust dates and terms and submit again."""
    seller_require(actor, lot.seller)
    with transaction.atomic():
        lot = Lot.objects.select_for_update().get(pk=lot.pk)
        _lot_move(lot, LotStatus.DRAFT, actor=actor, action="lot.relist", ip=ip)
    return lot


def lot_expire(*, lot_id: int) -> bool:
    """The sweeper: a published lot nobody traded by its pickup date expires."""
    with transaction.atomic():
        lot = (
            Lot.objects.select_for_update(skip_locked=True)
            .filter(pk=lot_id, status=LotStatus.PUBLISHED)
            .first()
        )
        if lot is None or lot.pickup_by >= timezone.localdate() or lot.bid_count:
            return False
        _lot_move(lot, LotStatus.EXPIRED, actor=None, action="lot.expire", reason=_("超过最迟提货日期"))
        _after_commit_index(lot.pk)
    return True


# --- market state written by trading --------------------------------------------------------

LOT_MARKET_FIELDS = ("trade_mode", "current_price", "closes_at", "bid_count", "sequence")


def lot_market_update(*, lot_id: int, reindex: bool = False, newer_than: int | None = None, **fields) -> None:
    """Trading writes a lot's denormalised market state (trade mode, current price, closes at, bid
    count, sequence) here, in its own transaction under its own lock of the sale, or just after it.
    ``newer_than``: the sale's sequence number of this state; the row changes only if it holds an
    older one (updates sent after commits may arrive out of order)."""
    statement = lot_market_statement(lot_id=lot_id, newer_than=newer_than, **fields)
    (changed,) = execute_many([statement])
    if changed and reindex:
        _after_commit_index(lot_id)


def lot_market_statement(*, lot_id: int, newer_than: int | None = None, **fields) -> Statement:
    """``lot_market_update`` (without reindexing) compiled and not run, to be sent with other
    statements (``market.core.commit.execute_many_async``)."""
    unknown = set(fields) - set(LOT_MARKET_FIELDS)
    if unknown:
        raise TypeError(f"not market fields: {sorted(unknown)}")
    prices_only = set(fields) <= {"current_price", "closes_at", "bid_count", "sequence"}

    def then(changed: int) -> None:
        if changed:
            from listings.search.facets_cache import lots_changed

            # A queryset update sends no post_save: cached search counts are void (a bid moves only
            # prices).
            lots_changed(prices_only=prices_only)

    below = {} if newer_than is None else {"sequence": newer_than}
    return row_update_statement(Lot, lot_id, {**fields, "updated_at": timezone.now()}, below=below, then=then)


def lot_trading_end(*, lot_id: int, sold: bool, reason: str = "") -> Lot | None:
    """A sale ended: a sold lot closes; an unsold one expires, so its seller may relist it."""
    lot = Lot.objects.select_for_update().filter(pk=lot_id).first()
    if lot is None or lot.status != LotStatus.PUBLISHED:
        return lot
    if sold:
        _lot_move(lot, LotStatus.CLOSED, actor=None, action="lot.close", reason=reason)
    else:
        _lot_move(lot, LotStatus.EXPIRED, actor=None, action="lot.unsold", reason=reason)
    _after_commit_index(lot.pk)
    return lot


# --- media ----------------------------------------------------------------------------------


def _thumbnail(upload) -> bytes:
    from PIL import Image, ImageOps

    upload.seek(0)
    with Image.open(upload) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        img.thumbnail(THUMBNAIL_SIZE)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=82)
    upload.seek(0)
    return buf.getvalue()


def lot_media_add(*, actor, lot: Lot, file, kind: str = MediaKind.PHOTO, ip=None) -> LotMedia:
    seller_require(actor, lot.seller)
    if kind not in MediaKind.values:
        raise _field_error("kind", _("类型无效。"), "invalid_choice")
    if lot.status not in (LotStatus.DRAFT, LotStatus.SUBMITTED, LotStatus.PUBLISHED):
        raise ValidationError(_("该标的已结束，不能再上传。"), code="not_editable")
    try:
        checked = upload_check(file, allowed=MEDIA_TYPES[kind], max_bytes=settings.LOT_MEDIA_MAX_BYTES)
    except ValidationError as exc:
        raise ValidationError({"file": exc.error_list}) from exc
    with transaction.atomic():
        Lot.objects.select_for_update().filter(pk=lot.pk).first()  # serialise counting per lot
        count = lot.media.filter(kind=kind).count()
        if count >= MEDIA_LIMITS[kind]:
            raise _field_error(
                "file",
                _("每个标的最多上传 %(n)d 个%(kind)s。")
                % {"n": MEDIA_LIMITS[kind], "kind": MediaKind(kind).label},
                "too_many",
            )
        media = LotMedia(
            lot=lot,
            kind=kind,
            original_name=checked.original_name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            position=count,
            uploaded_by=actor,
        )
        media._ext = checked.extension
        media.file.save("upload", file, save=False)
        if kind == MediaKind.PHOTO:
            media._ext = "jpg"
            media.thumbnail.save("thumb", ContentFile(_thumbnail(file)), save=False)
        media.save()
        audit_record(
            actor=actor, action="lot.media_add", target=lot, ip=ip, data={"media": media.pk, "kind": kind}
        )
    return media


def lot_media_remove(*, actor, media: LotMedia, ip=None) -> None:
    seller_require(actor, media.lot.seller)
    if media.lot.status not in (LotStatus.DRAFT, LotStatus.SUBMITTED):
        raise ValidationError(_("已挂牌的标的不能删除图片或文件。"), code="not_editable")
    with transaction.atomic():
        audit_record(
            actor=actor, action="lot.media_remove", target=media.lot, ip=ip, data={"media": media.pk}
        )
        files = [media.file.name, media.thumbnail.name]
        media.delete()
        storage = media.file.storage
        transaction.on_commit(lambda: [storage.delete(name) for name in files if name], robust=True)


# --- wanted listings and offers -------------------------------------------------------------


def buyer_require(actor, organisation: Organisation):
    """A trading member of a recycler (pages call it before validating a form, to answer 403)."""
    membership = member_require(actor, organisation, trade=True)
    if not organisation.is_recycler:
        raise PermissionDenied(_("只有回收利用单位可以发布求购信息。"))
    return membership


def wanted_create(
    *,
    actor,
    organisation: Organisation,
    category: str,
    title: str,
    quantity,
    unit: str,
    deadline,
    region: str | None = None,
    price_min=None,
    price_max=None,
    description: str = "",
    ip=None,
) -> WantedListing:
    buyer_require(actor, organisation)
    if not organisation.is_verified:
        raise ValidationError(_("单位通过平台认证后才能发布求购信息。"), code="buyer_not_verified")
    _blacklist_refuse(organisation)
    errors = {}
    cat = qty = reg = None
    try:
        cat = Category.objects.filter(pk=category, is_active=True).first()
        if cat is None:
            raise _field_error("category", _("品类不存在或已停用。"), "category_unknown")
    except ValidationError as exc:
        errors.update(exc.error_dict)
    try:
        qty = _quantity(quantity)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    if region:
        reg = Region.objects.filter(pk=region).first()
        if reg is None:
            errors["region"] = [ValidationError(_("行政区划代码不存在。"), code="region_unknown")]
    if cat is not None and unit != cat.unit:
        errors["unit"] = [
            ValidationError(
                _("该品类以“%(unit)s”计量。") % {"unit": cat.get_unit_display()}, code="unit_mismatch"
            )
        ]
    for name, value in (("price_min", price_min), ("price_max", price_max)):
        if value is not None and Decimal(value) <= 0:
            errors[name] = [ValidationError(_("价格必须大于零。"), code="not_positive")]
    if price_min is not None and price_max is not None and Decimal(price_max) < Decimal(price_min):
        errors["price_max"] = [ValidationError(_("最高价不能低于最低价。"), code="range_order")]
    if deadline is not None and deadline <= timezone.now():
        errors["deadline"] = [ValidationError(_("报价截止时间必须晚于现在。"), code="date_past")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        wanted = WantedListing.objects.create(
            buyer=organisation,
            created_by=actor,
            category=cat,
            title=(title or "").strip() or cat.name,
            description=description or "",
            quantity=qty,
            unit=unit,
            region=reg,
            price_min=price_min,
            price_max=price_max,
            deadline=deadline,
        )
        audit_record(actor=actor, action="wanted.create", target=wanted, to_state=wanted.status, ip=ip)
    return wanted


def wanted_withdraw(*, actor, wanted: WantedListing, ip=None) -> WantedListing:
    member_require(actor, wanted.buyer, trade=True)
    with transaction.atomic():
        wanted = WantedListing.objects.select_for_update().get(pk=wanted.pk)
        if wanted.status != WantedStatus.OPEN:
            raise ValidationError(_("该求购信息已结束。"), code="not_open")
        wanted.status = WantedStatus.WITHDRAWN
        wanted.save(update_fields=["status"])
        wanted.offers.filter(status=OfferStatus.OPEN).update(status=OfferStatus.WITHDRAWN)
        audit_record(
            actor=actor,
            action="wanted.withdraw",
            target=wanted,
            from_state="open",
            to_state="withdrawn",
            ip=ip,
        )
    return wanted


def offer_create(
    *,
    actor,
    wanted: WantedListing,
    organisation: Organisation,
    quantity,
    unit_price,
    message: str = "",
    lot=None,
    ip=None,
) -> WantedOffer:
    """A seller answers a wanted listing with a quantity and a unit price."""
    seller_require(actor, organisation)
    if not organisation.is_verified:
        raise ValidationError(_("单位通过平台认证后才能报价。"), code="seller_not_verified")
    _blacklist_refuse(organisation)
    if organisation.pk == wanted.buyer_id:
        raise ValidationError(_("不能向本单位的求购信息报价。"), code="own_listing")
    qty = _quantity(quantity)
    try:
        price = Decimal(str(unit_price))
    except (InvalidOperation, TypeError, ValueError):
        raise _field_error("unit_price", _("请输入数字。"), "invalid") from None
    if not price.is_finite() or price <= 0:
        raise _field_error("unit_price", _("价格必须大于零。"), "not_positive")
    if lot is not None and lot.seller_id != organisation.pk:
        raise _field_error("lot", _("只能引用本单位的标的。"), "not_own_lot")
    with transaction.atomic():
        wanted = WantedListing.objects.select_for_update().get(pk=wanted.pk)
        if wanted.status != WantedStatus.OPEN or wanted.deadline <= timezone.now():
            raise ValidationError(_("该求购信息已截止报价。"), code="not_open")
        if wanted.offers.filter(seller=organisation, status=OfferStatus.OPEN).exists():
            raise ValidationError(_("您已对该求购信息报价，请先撤回原报价。"), code="offer_exists")
        offer = WantedOffer.objects.create(
            wanted=wanted,
            seller=organisation,
            created_by=actor,
            lot=lot,
            quantity=qty,
            unit_price=price,
            message=message,
        )
        audit_record(
            actor=actor,
            action="wanted.offer",
            target=wanted,
            ip=ip,
            data={"offer": offer.pk, "unit_price": str(price)},
        )
    notify_users(
        wanted.buyer.memberships.values_list("user_id", flat=True),
        title=_("“%(title)s”收到新报价：%(price)s 元/%(unit)s")
        % {"title": wanted.title, "price": price, "unit": wanted.get_unit_display()},
        url=reverse("frontend:wanted_detail", args=[wanted.pk]),
    )
    return offer


def wanted_offer_accept(*, actor, offer: WantedOffer, ip=None) -> WantedOffer:
    """The recycler accepts a seller's offer: the offer is accepted, the others declined and the
    wanted listing closed. Call inside the transaction that records the award (trading does)."""
    buyer_require(actor, offer.wanted.buyer)
    wanted = WantedListing.objects.select_for_update().get(pk=offer.wanted_id)
    offer = WantedOffer.objects.select_for_update().get(pk=offer.pk)
    if wanted.status != WantedStatus.OPEN:
        raise ValidationError(_("该求购信息已结束。"), code="not_open")
    if offer.status != OfferStatus.OPEN:
        raise ValidationError(
            _("该报价已是“%(status)s”状态。") % {"status": offer.get_status_display()}, code="offer_not_open"
        )
    offer.status = OfferStatus.ACCEPTED
    offer.save(update_fields=["status"])
    wanted.offers.filter(status=OfferStatus.OPEN).exclude(pk=offer.pk).update(status=OfferStatus.DECLINED)
    wanted.status = WantedStatus.CLOSED
    wanted.save(update_fields=["status"])
    audit_record(
        actor=actor, action="wanted.accept", target=wanted, from_state="open", to_state="closed", ip=ip,
        data={"offer": offer.pk},
    )  # fmt: skip
    return offer


# --- saved searches -------------------------------------------------------------------------


def saved_search_create(
    *, actor, organisation: Organisation, name: str, query: dict, alerts: bool = True
) -> SavedSearch:
    member_require(actor, organisation)
    from listings.search import LotQuery

    parsed = LotQuery.from_params(query)  # raises ValidationError for bad filters
    name = (name or "").strip()
    if not name:
        raise _field_error("name", _("请为搜索命名。"), "required")
    if SavedSearch.objects.filter(user=actor).count() >= settings.SAVED_SEARCHES_MAX:
        raise ValidationError(
            _("最多保存 %(n)d 个搜索，请先删除不用的。") % {"n": settings.SAVED_SEARCHES_MAX}, code="too_many"
        )
    return SavedSearch.objects.create(
        user=actor, organisation=organisation, name=name[:64], query=parsed.to_params(), alerts=alerts
    )


def saved_search_delete(*, actor, saved_search: SavedSearch) -> None:
    if saved_search.user_id != actor.pk:
        raise PermissionDenied(_("只能删除自己保存的搜索。"))
    saved_search.delete()
