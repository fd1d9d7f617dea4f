"""Page forms of a deal (成交合同): paying, the bank-transfer slip, pickup, weighing, disputes, the
hazardous-waste manifest, ratings, an operator's decision and the trace-code lookup.

As elsewhere, a form checks formats only; the rules (windows, states, who may act, licences) live in
``market.deals.services``, whose ``ValidationError`` is copied onto the form and whose refusals
(``DealRefused``) are shown beside the field they concern or above the form.
"""

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from frontend.forms_trading import DATETIME_FORMATS
from market.deals.models import DefaultParty, PaymentMethod

# A refusal of the deals service shown beside the field it is about (the others go above the form).
REFUSAL_FIELDS = {
    "pickup_date": "date",
    "weighing_values": "gross_t",
    "rating_score": "score",
    "licence_missing": "shipped_on",
}


def _tonnes(label, *, required=True, help_text=""):
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=14,
        decimal_places=3,
        min_value=0,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0", "inputmode": "decimal"}),
    )


def _date(label, *, help_text=""):
    return forms.DateField(
        label=label,
        help_text=help_text,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


def _text(label, *, max_length, required=True, help_text="", **attrs):
    return forms.CharField(
        label=label,
        max_length=max_length,
        required=required,
        help_text=help_text,
        widget=forms.TextInput(attrs=attrs) if attrs else None,
    )


class PayForm(forms.Form):
    """How the buyer pays what is due: bank transfer always, online only when Stripe is set up."""

    method = forms.ChoiceField(label=_("付款方式"), widget=forms.RadioSelect)

    def __init__(self, *args, stripe: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(PaymentMethod.BANK_TRANSFER, PaymentMethod.BANK_TRANSFER.label)]
        if stripe:
            choices.append((PaymentMethod.STRIPE, PaymentMethod.STRIPE.label))
        self.fields["method"].choices = choices
        self.fields["method"].initial = PaymentMethod.BANK_TRANSFER


class SlipForm(forms.Form):
    slip = forms.FileField(
        label=_("转账凭证"),
        help_text=_("银行回单的照片、截图或 PDF（JPG、PNG、PDF）。"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,application/pdf"}),
    )


class PickupForm(forms.Form):
    date = _date(_("提货日期"))
    vehicle_plate = _text(_("车牌号"), max_length=16, autocomplete="off", placeholder="冀B12345")
    driver_name = _text(_("司机姓名"), max_length=32, autocomplete="off")
    driver_phone = _text(_("司机电话"), max_length=32, autocomplete="off", inputmode="tel", type="tel")
    note = _text(_("备注"), max_length=255, required=False)

    def __init__(self, *args, deal=None, **kwargs):
        super().__init__(*args, **kwargs)
        if deal is not None:
            start = max(deal.pickup_from, timezone.localdate())
            attrs = self.fields["date"].widget.attrs
            attrs["min"], attrs["max"] = start.isoformat(), deal.pickup_by.isoformat()
            self.fields["date"].help_text = _("可选 %(start)s 至 %(end)s。") % {
                "start": start.isoformat(),
                "end": deal.pickup_by.isoformat(),
            }


class WeighingForm(forms.Form):
    ticket_no = _text(_("磅单号"), max_length=32, autocomplete="off")
    gross_t = _tonnes(_("毛重（吨）"))
    tare_t = _tonnes(_("皮重（吨）"))
    weighed_at = forms.DateTimeField(
        label=_("过磅时间"),
        required=False,
        input_formats=DATETIME_FORMATS,
        help_text=_("不填则为现在。"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ticket = forms.FileField(
        label=_("磅单照片"),
        required=False,
        help_text=_("过磅单的照片或 PDF，供对方和平台核对。"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,application/pdf"}),
    )

    def clean(self):
        cleaned = super().clean()
        gross, tare = cleaned.get("gross_t"), cleaned.get("tare_t")
        if gross is not None and tare is not None and gross <= tare:
            self.add_error("gross_t", _("毛重必须大于皮重。"))
        weighed_at = cleaned.get("weighed_at")
        if weighed_at is not None and weighed_at > timezone.now() + timedelta(minutes=10):
            self.add_error("weighed_at", _("过磅时间不能晚于现在。"))
        return cleaned


class DisputeForm(forms.Form):
    reason = forms.CharField(
        label=_("异议理由"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("例如：复磅净重与磅单不符、货物质量与约定不符。平台将介入处理。"),
    )


class ManifestForm(forms.Form):
    transporter_name = _text(_("运输单位"), max_length=128)
    transporter_licence = _text(_("道路危险货物运输许可证号"), max_length=64, autocomplete="off")
    vehicle_plate = _text(_("运输车辆"), max_length=16, autocomplete="off", placeholder="豫U12345")
    shipped_on = _date(_("转移日期"))
    packaging = _text(_("包装方式"), max_length=32, required=False, help_text=_("不填则按标的的包装方式。"))


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("评分"),
        coerce=int,
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        widget=forms.RadioSelect,
        help_text=_("5 分最好，1 分最差。"),
    )
    comment = forms.CharField(
        label=_("评价内容"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ResolveForm(forms.Form):
    """An operator's decision on a disputed deal."""

    decision = forms.ChoiceField(
        label=_("裁定结果"),
        choices=[("weight", _("按裁定净重结算")), ("cancel", _("取消合同，退回货款"))],
        widget=forms.RadioSelect,
        initial="weight",
    )
    net_t = _tonnes(_("裁定净重（吨）"), required=False, help_text=_("按裁定净重结算时必填。"))
    against = forms.ChoiceField(
        label=_("裁定不利方"),
        required=False,
        choices=[("", _("无（不计入信用）")), *DefaultParty.choices],
        help_text=_("计入该方的信用记录。"),
    )
    reason = forms.CharField(label=_("裁定理由"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == "weight" and not cleaned.get("net_t"):
            self.add_error("net_t", _("请填写裁定的净重（吨）。"))
        return cleaned


class TraceLookupForm(forms.Form):
    code = forms.RegexField(
        label=_("追溯码"),
        regex=r"^\s*[0-9A-Za-z]{6,16}\s*$",
        max_length=32,
        error_messages={"invalid": _("追溯码由 10 位字母和数字组成，见合同或联单上的二维码旁。")},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "mono",
                "autocapitalize": "characters",
            }
        ),
    )
