"""Page forms of listings: lots (with spec fields built from a category's schema), the search
filters, wanted listings, offers and saved searches.

As in ``frontend/forms.py``, a form checks only what a form can (formats, required fields); the
market's rules (units, spec ranges, dates, permissions) live in ``listings.services``, whose
``ValidationError`` is copied onto the form so each message shows next to its field.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from frontend.widgets import LongSelect
from listings.models import Category, Packaging, TradeMode, Unit
from listings.services import MEDIA_LIMITS
from market.core.models import Region, RegionLevel

SPEC_PREFIX = "spec_"


# --- choices built from the catalogue and the regions ----------------------------------------


def _english() -> bool:
    return (get_language() or "").lower().startswith("en")


def category_name(category: Category) -> str:
    """The category's name in the page's language."""
    if _english() and category.name_en:
        return category.name_en
    return category.name


def categories_tree_sorted(categories: list[Category]) -> list[Category]:
    """Parents before their children, siblings by ``sort_order`` then code."""
    codes = {c.code for c in categories}
    children: dict[str | None, list[Category]] = {}
    for category in categories:
        parent = category.parent_id if category.parent_id in codes else None
        children.setdefault(parent, []).append(category)
    ordered: list[Category] = []

    def walk(parent):
        for category in sorted(children.get(parent, []), key=lambda c: (c.sort_order, c.code)):
            ordered.append(category)
            walk(category.code)

    walk(None)
    return ordered


def category_leaf_choices(categories: list[Category]) -> list:
    """Leaf categories (a lot needs the finest level), grouped by their top-level branch:
    ``[(branch name, [(code, "middle · leaf"), ...]), ...]``."""
    by_code = {c.code: c for c in categories}
    parents = {c.parent_id for c in categories if c.parent_id}
    groups: dict[str, list] = {}
    for category in categories_tree_sorted(categories):
        if category.code in parents:
            continue
        parts = category.code.split(".")
        path = [by_code[p] for p in (".".join(parts[: i + 1]) for i in range(1, len(parts))) if p in by_code]
        label = " · ".join(category_name(c) for c in path) or category_name(category)
        groups.setdefault(parts[0], []).append((category.code, label))
    return [
        (category_name(by_code[root]) if root in by_code else root, items) for root, items in groups.items()
    ]


def category_tree_choices(categories: list[Category], blank_label) -> list[tuple[str, str]]:
    """Every category, indented by depth, for a filter that takes a branch or a leaf."""
    choices = [("", blank_label)]
    for category in categories_tree_sorted(categories):
        choices.append((category.code, "\u3000" * category.depth + category_name(category)))
    return choices


def region_choices(blank_label) -> list:
    """Provinces, each with its prefecture-level cities (placeholders such as 市辖区 left out):
    ``[("", blank), (province name, [(province code, "province（全省）"), (city code, name)...])...]``."""
    regions = list(
        Region.objects.filter(level__in=(RegionLevel.PROVINCE, RegionLevel.CITY)).only(
            "code", "name", "level", "parent_id"
        )
    )
    provinces = [r for r in regions if r.level == RegionLevel.PROVINCE]
    cities: dict[str, list[Region]] = {}
    for region in regions:
        if region.level == RegionLevel.CITY and not region.is_placeholder:
            cities.setdefault(region.parent_id, []).append(region)
    choices: list = [("", blank_label)]
    for province in provinces:
        items = [(province.code, _("%(name)s（全省）") % {"name": province.name})]
        items += [(city.code, city.name) for city in cities.get(province.code, [])]
        choices.append((province.name, items))
    return choices


# --- lots -----------------------------------------------------------------------------------


class LotForm(forms.Form):
    """A lot's fields; ``schema`` (a category's effective spec schema) adds one ``spec_<key>``
    field per spec. Spec fields are optional here: the service checks required specs, ranges and
    choices and names the field (``specs.<key>``)."""

    category = forms.ChoiceField(
        label=_("品类"), help_text=_("请选择到最细一级品类；规格项随品类变化。"), widget=LongSelect
    )
    title = forms.CharField(
        label=_("标题"),
        max_length=120,
        help_text=_("简明写出货物和数量，例如：转炉车间重型废钢 500 吨。"),
    )
    quantity = forms.DecimalField(
        label=_("数量"),
        max_digits=14,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0", "inputmode": "decimal"}),
    )
    unit = forms.CharField(required=False, widget=forms.HiddenInput)
    region = forms.RegexField(
        label=_("货物所在地（区县）"),
        regex=r"^\d{6}$",
        error_messages={"invalid": _("请填写 6 位数字的区县行政区划代码。")},
        help_text=_("提货地点所在区县，例如 130203（河北省唐山市路北区）。"),
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "maxlength": "6",
                "data-region-picker": "",
                "data-region-api": "/api/v1/regions/",
                "data-label-province": _("省份"),
                "data-label-city": _("城市"),
                "data-label-county": _("区县"),
                "data-label-choose": _("请选择"),
            }
        ),
    )
    address = forms.CharField(
        label=_("提货地址"), max_length=255, help_text=_("厂区、仓库或堆场的详细地址。")
    )
    available_from = forms.DateField(
        label=_("可提货日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    pickup_by = forms.DateField(
        label=_("最迟提货日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    packaging = forms.ChoiceField(label=_("包装方式"), choices=Packaging.choices, initial=Packaging.BULK)
    description = forms.CharField(
        label=_("描述"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("来源工序、成分、杂质、存放和装车条件等，写得越清楚越容易成交。"),
    )

    def __init__(self, *args, categories: list[Category] = (), schema: list[dict] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", _("请选择品类")), *category_leaf_choices(list(categories))]
        # Choosing a category swaps in its spec inputs (and its unit) without a page load.
        self.fields["category"].widget.attrs.update(
            {
                "hx-get": reverse("frontend:lot_spec_fields"),
                "hx-trigger": "change",
                "hx-target": "#spec-fields",
                "hx-include": "#spec-fields",
                "hx-indicator": "#spec-loading",
            }
        )
        self.schema = list(schema or [])
        for spec in self.schema:
            self.fields[SPEC_PREFIX + spec["key"]] = spec_field(spec)

    @property
    def spec_fields(self) -> list:
        return [self[SPEC_PREFIX + spec["key"]] for spec in self.schema]

    def specs(self) -> dict:
        """The spec values the seller filled in (empty ones left out), as the service takes them."""
        values = {}
        for spec in self.schema:
            value = self.cleaned_data.get(SPEC_PREFIX + spec["key"])
            if value is None or value == "":
                continue
            values[spec["key"]] = value
        return values

    def service_values(self) -> dict:
        data = self.cleaned_data
        return {
            "category": data["category"],
            "title": data["title"],
            "quantity": data["quantity"],
            "unit": data["unit"],
            "specs": self.specs(),
            "region": data["region"],
            "address": data["address"],
            "available_from": data["available_from"],
            "pickup_by": data["pickup_by"],
            "packaging": data["packaging"],
            "description": data["description"],
        }

    def error_map(self, exc) -> dict[str, str]:
        """Service field names -> form field names: ``specs.<key>`` -> ``spec_<key>``; a unit that
        does not match the category is shown beside the quantity."""
        mapping = {"unit": "quantity"}
        for name in getattr(exc, "error_dict", {}):
            if name.startswith("specs."):
                mapping[name] = SPEC_PREFIX + name.removeprefix("specs.")
        return mapping


YES_NO = [("", _("请选择")), ("true", _("是")), ("false", _("否"))]


def spec_label(spec: dict) -> str:
    if _english() and spec.get("label_en"):
        return spec["label_en"]
    return spec.get("label") or spec["key"]


def spec_help(spec: dict) -> str:
    if _english() and spec.get("help_en"):
        return spec["help_en"]
    return spec.get("help") or ""


def spec_choices(spec: dict) -> list[tuple[str, str]]:
    """``(value, label)`` pairs in the page's language (a choice may carry an English label third)."""
    english = _english()
    return [
        (str(c[0]), str(c[2] if english and len(c) > 2 and c[2] else c[1])) for c in spec.get("choices") or []
    ]


def spec_field(spec: dict) -> forms.Field:
    """A form field for one spec of a category's schema. Browser hints (min, max, step) are set,
    but values are checked by the service (``listings.specs``), whose messages name the limits."""
    kind = spec.get("type", "text")
    hints = [spec_help(spec)]
    unit = spec.get("unit") or ""
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None:
        hints.append(_("范围 %(min)s–%(max)s %(unit)s") % {"min": low, "max": high, "unit": unit})
    elif low is not None:
        hints.append(_("不小于 %(min)s %(unit)s") % {"min": low, "unit": unit})
    elif high is not None:
        hints.append(_("不大于 %(max)s %(unit)s") % {"max": high, "unit": unit})
    help_text = " ".join(str(h).strip() for h in hints if h and str(h).strip())
    common = {"label": spec_label(spec), "required": False, "help_text": help_text}
    attrs = {"data-spec-key": spec["key"]}
    if spec.get("required"):
        attrs["aria-required"] = "true"
    for bound in ("min", "max"):
        if spec.get(bound) is not None:
            attrs[bound] = str(spec[bound])
    if kind in ("number", "integer"):
        attrs.update(
            {
                "step": "1" if kind == "integer" else "any",
                "inputmode": "numeric" if kind == "integer" else "decimal",
            }
        )
        field = forms.CharField(max_length=40, widget=forms.NumberInput(attrs=attrs), **common)
    elif kind == "choice":
        field = forms.ChoiceField(
            choices=[("", _("请选择")), *spec_choices(spec)], widget=forms.Select(attrs=attrs), **common
        )
    elif kind == "bool":
        field = forms.TypedChoiceField(
            choices=YES_NO,
            coerce=lambda v: v == "true",
            empty_value=None,
            widget=forms.Select(attrs=attrs),
            **common,
        )
    else:
        attrs["maxlength"] = str(spec.get("max_length") or 200)
        field = forms.CharField(widget=forms.TextInput(attrs=attrs), **common)
    field.spec = spec
    return field


def spec_initial(schema: list[dict], specs: dict) -> dict:
    """A lot's stored specs as initial values of the spec fields."""
    initial = {}
    for spec in schema:
        if spec["key"] not in (specs or {}):
            continue
        value = specs[spec["key"]]
        if spec.get("type") == "bool":
            value = "true" if value in (True, "true", "True", 1, "1") else "false"
        initial[SPEC_PREFIX + spec["key"]] = value
    return initial


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("撤回原因"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": _("例如：货物已另行处置")}),
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or more files (Django's documented pattern); cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            if not data:
                return [single(None, initial)]
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class MediaForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("类型"),
        choices=[("photo", _("现场照片")), ("document", _("检测报告等文件"))],
        initial="photo",
    )
    file = MultipleFileField(
        label=_("选择文件"),
        widget=MultipleFileInput(
            attrs={"accept": ".jpg,.jpeg,.png,.pdf,image/jpeg,image/png,application/pdf"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = gettext(
            "照片为 JPG 或 PNG，最多 %(photos)d 张；检测报告等文件可为 PDF、JPG 或 PNG，最多 %(documents)d 个；"
            "每个文件最大 %(mb)d MB。可以一次选择多个文件。"
        ) % {
            "photos": MEDIA_LIMITS["photo"],
            "documents": MEDIA_LIMITS["document"],
            "mb": settings.LOT_MEDIA_MAX_BYTES // (1024 * 1024),
        }


# --- search ---------------------------------------------------------------------------------

SORT_CHOICES = [
    ("relevance", _("相关度")),
    ("newest", _("最新挂牌")),
    ("closing", _("即将截止")),
    ("price_asc", _("价格从低到高")),
    ("price_desc", _("价格从高到低")),
]
CLOSING_CHOICES = [("", _("不限")), ("24", _("24 小时内")), ("72", _("3 天内")), ("168", _("7 天内"))]
HAZARDOUS_CHOICES = [("", _("不限")), ("false", _("一般固废和再生资源")), ("true", _("危险废物"))]


class LotSearchForm(forms.Form):
    """The filters of the search page, read from the URL. Nothing is checked here: the search's
    ``LotQuery.from_params`` checks every parameter and its errors are shown on these fields."""

    q = forms.CharField(
        label=_("关键词"),
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("例如：废钢、电解铜、粉煤灰"), "autocomplete": "off"}
        ),
    )
    category = forms.ChoiceField(label=_("品类"), required=False, widget=LongSelect)
    region = forms.ChoiceField(label=_("地区"), required=False, widget=LongSelect)
    qmin = forms.CharField(
        label=_("数量不少于"), required=False, widget=forms.NumberInput(attrs={"min": "0", "step": "any"})
    )
    qmax = forms.CharField(
        label=_("数量不多于"), required=False, widget=forms.NumberInput(attrs={"min": "0", "step": "any"})
    )
    pmin = forms.CharField(
        label=_("价格不低于（元）"),
        required=False,
        widget=forms.NumberInput(attrs={"min": "0", "step": "any"}),
    )
    pmax = forms.CharField(
        label=_("价格不高于（元）"),
        required=False,
        widget=forms.NumberInput(attrs={"min": "0", "step": "any"}),
    )
    mode = forms.ChoiceField(
        label=_("交易方式"), required=False, choices=[("", _("不限")), *TradeMode.choices]
    )
    hazardous = forms.ChoiceField(label=_("废物类别"), required=False, choices=HAZARDOUS_CHOICES)
    closing_within = forms.ChoiceField(label=_("截止时间"), required=False, choices=CLOSING_CHOICES)
    sort = forms.ChoiceField(label=_("排序"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args, categories: list[Category] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = category_tree_choices(list(categories), _("全部品类"))
        self.fields["region"].choices = region_choices(_("全国"))
        # A value the lists do not offer (a county code, an old link) stays selectable, so the
        # search's own message about it is what the visitor reads.
        for name in ("category", "region", "mode", "hazardous", "closing_within", "sort"):
            value = self.data.get(name, "") if self.is_bound else ""
            field = self.fields[name]
            if value and not field.valid_value(value):
                field.choices = [*field.choices, (value, value)]


class SavedSearchForm(forms.Form):
    name = forms.CharField(
        label=_("名称"),
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": _("例如：河北重废 100 吨以上")}),
    )
    alerts = forms.BooleanField(label=_("有新货源时提醒我"), required=False, initial=True)
    query = forms.CharField(required=False, widget=forms.HiddenInput)


# --- wanted listings and offers -------------------------------------------------------------


class WantedForm(forms.Form):
    category = forms.ChoiceField(label=_("品类"), widget=LongSelect)
    title = forms.CharField(
        label=_("标题"),
        max_length=120,
        required=False,
        help_text=_("不填则使用品类名称。"),
    )
    quantity = forms.DecimalField(
        label=_("求购数量"),
        max_digits=14,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0", "inputmode": "decimal"}),
    )
    unit = forms.ChoiceField(
        label=_("单位"), choices=Unit.choices, initial=Unit.TONNE, help_text=_("须与品类的计量单位一致。")
    )
    region = forms.ChoiceField(
        label=_("货源地区"), required=False, help_text=_("不选表示不限地区。"), widget=LongSelect
    )
    price_min = forms.DecimalField(
        label=_("最低价（元/单位）"),
        required=False,
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )
    price_max = forms.DecimalField(
        label=_("最高价（元/单位）"),
        required=False,
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )
    deadline = forms.DateTimeField(
        label=_("报价截止时间"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    description = forms.CharField(
        label=_("说明"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("质量要求、交货方式、付款条件等。"),
    )

    def __init__(self, *args, categories: list[Category] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = category_tree_choices(list(categories), _("请选择品类"))
        self.fields["region"].choices = region_choices(_("不限地区"))
        if not self.is_bound and "deadline" not in self.initial:
            self.initial["deadline"] = (timezone.localtime() + timedelta(days=7)).replace(
                minute=0, second=0, microsecond=0
            )


class OfferForm(forms.Form):
    quantity = forms.DecimalField(
        label=_("可供数量"),
        max_digits=14,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0", "inputmode": "decimal"}),
    )
    unit_price = forms.DecimalField(
        label=_("单价（元/单位）"),
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
    )
    message = forms.CharField(
        label=_("留言"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("货物情况、可提货时间等。"),
    )
