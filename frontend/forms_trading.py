"""Page forms of the trading floor: a sale's terms, a bid, a purchase, a quotation.

As elsewhere, a form checks formats only; the market's rules (increments, clocks, eligibility,
deposits) live in ``market.trading.services``, whose ``ValidationError`` is copied onto the form and
whose ``TradeRefused`` message is shown above it.
"""

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from listings.models import TradeMode
from market.core.models import Region, RegionLevel

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def _money(label, *, required=False, help_text="", places=2):
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=14,
        decimal_places=places,
        min_value=0,
        help_text=help_text,
        widget=forms.NumberInput(
            attrs={"step": "0.01" if places == 2 else "0.001", "min": "0", "inputmode": "decimal"}
        ),
    )


def _when(label, *, required=False, help_text=""):
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=DATETIME_FORMATS,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def _minutes(label, *, initial, help_text=""):
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=60,
        initial=initial,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "1", "min": "1", "max": "60", "inputmode": "numeric"}),
    )


# The fields each trade mode uses; the others are ignored (and hidden by sale_form.ts).
MODE_FIELDS = {
    TradeMode.AUCTION: [
        "start_price",
        "increment_amount",
        "increment_percent",
        "reserve_price",
        "buy_now_price",
        "extend_window_min",
        "extend_by_min",
        "max_closes_at",
    ],
    TradeMode.TENDER: ["start_price", "reserve_price", "min_bidders"],
    TradeMode.FIXED: ["fixed_price", "min_quantity"],
    TradeMode.QUOTATION: [],
}
COMMON_FIELDS = ["deposit_amount", "allowed_provinces", "min_credit_score"]


def province_choices() -> list[tuple[str, str]]:
    return list(
        Region.objects.filter(level=RegionLevel.PROVINCE).order_by("code").values_list("code", "name")
    )


class SaleForm(forms.Form):
    """How the seller sells a lot. Seconds are entered as minutes (the service takes seconds)."""

    mode = forms.ChoiceField(
        label=_("交易方式"),
        choices=TradeMode.choices,
        initial=TradeMode.AUCTION,
        widget=forms.RadioSelect(attrs={"data-sale-mode": ""}),
        help_text=_(
            "竞价：公开加价，价高者得；招标：密封投标，截止后开标；一口价：按挂牌价直接购买；询价：买方报价，由您选择接受。"
        ),
    )
    starts_at = _when(_("开始时间"), help_text=_("不填则立即开始。"))
    ends_at = _when(_("截止时间"), required=True, help_text=_("以平台服务器时间（北京时间）为准。"))
    # auction and tender
    start_price = _money(_("起拍价（元/单位）"), help_text=_("竞价必填；招标时为最低投标价（选填）。"))
    reserve_price = _money(_("保留价（元/单位）"), help_text=_("不公开；最高价低于保留价时流拍。"))
    # auction
    increment_amount = _money(_("加价幅度（元）"), help_text=_("与加价百分比二选一。"))
    increment_percent = forms.DecimalField(
        label=_("加价幅度（%）"),
        required=False,
        max_digits=5,
        decimal_places=2,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "50", "inputmode": "decimal"}),
    )
    buy_now_price = _money(
        _("一口价（元/单位）"), help_text=_("买方出此价格可立即成交；须高于起拍价和保留价。")
    )
    extend_window_min = _minutes(
        _("延时触发窗口（分钟）"), initial=5, help_text=_("截止前这段时间内有人出价，截止时间自动延长。")
    )
    extend_by_min = _minutes(_("每次延时（分钟）"), initial=5)
    max_closes_at = _when(_("最晚截止时间"), help_text=_("延时不超过此时间；不填则为截止时间后 1 小时。"))
    # tender
    min_bidders = forms.IntegerField(
        label=_("最少有效投标人数"),
        min_value=1,
        max_value=50,
        initial=2,
        help_text=_("截止时有效投标人数不足则流标。"),
        widget=forms.NumberInput(attrs={"min": "1", "max": "50", "inputmode": "numeric"}),
    )
    # fixed price
    fixed_price = _money(_("挂牌价（元/单位）"))
    min_quantity = _money(_("最小购买量"), places=3, help_text=_("不填则须整批购买。"))
    # every mode
    deposit_amount = _money(
        _("保证金（元）"), help_text=_("不填或为 0 表示无需保证金；买方经平台确认到账后才能出价。")
    )
    allowed_provinces = forms.MultipleChoiceField(
        label=_("限定竞买人所在省份"),
        required=False,
        help_text=_("不选表示不限地区。按住 Ctrl 或 ⌘ 可多选。"),
        widget=forms.SelectMultiple(attrs={"size": "6"}),
    )
    min_credit_score = forms.IntegerField(
        label=_("竞买人最低信用分"),
        required=False,
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"min": "0", "max": "100", "inputmode": "numeric"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_provinces"].choices = province_choices()
        # Mode-specific fields are checked by the service for the chosen mode only.
        for name in ("min_bidders", "extend_window_min", "extend_by_min"):
            self.fields[name].required = False
        if not self.is_bound and "ends_at" not in self.initial:
            self.initial["ends_at"] = (timezone.localtime() + timedelta(days=3)).replace(
                minute=0, second=0, microsecond=0
            )

    def mode_fieldsets(self) -> list[dict]:
        """The fieldsets of the form, each naming the modes it belongs to (for sale_form.ts)."""
        groups = [
            (_("竞价和招标"), "auction tender", ["start_price", "reserve_price"]),
            (
                _("竞价规则"),
                "auction",
                [
                    "increment_amount",
                    "increment_percent",
                    "buy_now_price",
                    "extend_window_min",
                    "extend_by_min",
                    "max_closes_at",
                ],
            ),
            (_("招标规则"), "tender", ["min_bidders"]),
            (_("一口价"), "fixed", ["fixed_price", "min_quantity"]),
        ]
        return [
            {"legend": legend, "modes": modes, "fields": [self[n] for n in names]}
            for legend, modes, names in groups
        ]

    def service_values(self) -> dict:
        data = self.cleaned_data
        mode = data["mode"]
        values = {"mode": mode, "ends_at": data["ends_at"], "starts_at": data.get("starts_at")}
        for name in MODE_FIELDS[mode] + COMMON_FIELDS:
            if name in ("extend_window_min", "extend_by_min"):
                value = data.get(name) or 5
                values[name.replace("_min", "_s")] = int(value) * 60
            elif name == "min_bidders":
                values[name] = data.get(name) or 2
            elif name == "allowed_provinces":
                values[name] = list(data.get(name) or [])
            else:
                values[name] = data.get(name)
        return values

    @staticmethod
    def error_map() -> dict[str, str]:
        return {"extend_window_s": "extend_window_min", "extend_by_s": "extend_by_min"}


def sale_initial(sale) -> dict:
    """The form's values from an existing sale (to change its terms before the first bid)."""
    initial = {
        "mode": sale.mode,
        "starts_at": timezone.localtime(sale.starts_at),
        "ends_at": timezone.localtime(sale.ends_at),
        "extend_window_min": max(1, sale.extend_window_s // 60),
        "extend_by_min": max(1, sale.extend_by_s // 60),
        "min_bidders": sale.min_bidders,
        "allowed_provinces": list(sale.allowed_provinces or []),
        "min_credit_score": sale.min_credit_score,
        "max_closes_at": timezone.localtime(sale.max_closes_at) if sale.max_closes_at else None,
    }
    for name in (
        "start_price",
        "increment_amount",
        "increment_percent",
        "reserve_price",
        "buy_now_price",
        "fixed_price",
        "min_quantity",
        "deposit_amount",
    ):
        value = getattr(sale, name)
        # 2000.00 -> 2000 and 2.50 -> 2.5, never 2E+3
        initial[name] = (
            (value.quantize(1) if value == value.to_integral_value() else value.normalize())
            if value
            else None
        )
    return initial


class BidForm(forms.Form):
    amount = forms.DecimalField(
        label=_("出价（元/单位）"),
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(
            attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "autocomplete": "off"}
        ),
    )
    maximum = forms.DecimalField(
        label=_("代理出价上限（元/单位）"),
        required=False,
        max_digits=14,
        decimal_places=2,
        help_text=_("不公开。有人出价超过您时，系统按加价幅度自动替您加价，直到此上限。"),
        widget=forms.NumberInput(
            attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "autocomplete": "off"}
        ),
    )


class TenderForm(forms.Form):
    amount = forms.DecimalField(
        label=_("投标价（元/单位）"),
        max_digits=14,
        decimal_places=2,
        help_text=_(
            "密封投标：截止前任何人（包括卖方和平台）都看不到您的报价；截止前可以修改，以最后一次为准。"
        ),
        widget=forms.NumberInput(
            attrs={"step": "0.01", "min": "0", "inputmode": "decimal", "autocomplete": "off"}
        ),
    )


class BuyForm(forms.Form):
    quantity = forms.DecimalField(
        label=_("购买数量"),
        required=False,
        max_digits=14,
        decimal_places=3,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0", "inputmode": "decimal"}),
    )


class LotOfferForm(forms.Form):
    quantity = forms.DecimalField(
        label=_("数量"),
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
        help_text=_("提货时间、付款方式等。"),
    )
