"""Page forms. They check only what a form can (required fields, formats, matching passwords); the
market's rules live in the services, whose ``ValidationError`` is copied onto the form with
``form_errors_apply`` so each message shows next to its field."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from market.accounts.models import LicenceKind, MemberRole, OrganisationRole


def form_errors_apply(
    form: forms.Form, exc: ValidationError, field_map: dict[str, str] | None = None
) -> None:
    """Copy a service's ``ValidationError`` onto ``form``.

    Errors keyed by a field the form has go to that field (``field_map`` renames service keys, e.g.
    ``{"password": "password1"}``); every other error, and an error without fields, goes to the
    form's non-field errors, so nothing the service said is lost.
    """
    field_map = field_map or {}
    if not hasattr(exc, "error_dict"):
        for error in exc.error_list:
            form.add_error(None, error)
        return
    for name, errors in exc.error_dict.items():
        target = field_map.get(name, name)
        if target not in form.fields:
            target = None
        for error in errors:
            form.add_error(target, error)


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("邮箱"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        help_text=_("用于登录和接收交易通知。"),
    )
    full_name = forms.CharField(
        label=_("姓名"), max_length=64, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    phone = forms.CharField(
        label=_("手机号"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
    )
    password1 = forms.CharField(
        label=_("密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("至少 8 位，不能全是数字，不能与邮箱或姓名相近。"),
    )
    password2 = forms.CharField(
        label=_("确认密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error(
                "password2", ValidationError(_("两次输入的密码不一致。"), code="password_mismatch")
            )
        return cleaned


class LoginForm(AuthenticationForm):
    """Django's form; the username is the email address."""

    error_messages = {
        "invalid_login": _("邮箱或密码不正确。"),
        "inactive": _("该账户已停用。"),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = _("邮箱")
        self.fields["username"].widget = forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
        self.fields["password"].label = _("密码")


class OrganisationForm(forms.Form):
    legal_name = forms.CharField(label=_("单位名称"), max_length=128, help_text=_("与营业执照上的名称一致。"))
    short_name = forms.CharField(label=_("简称"), max_length=32, required=False)
    uscc = forms.CharField(
        label=_("统一社会信用代码"),
        max_length=40,  # the service normalises (spaces, case) and checks length and check digit
        help_text=_("营业执照上的 18 位代码，系统会校验其校验位。"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "mono"}),
    )
    role = forms.ChoiceField(
        label=_("单位类型"),
        choices=OrganisationRole.choices,
        help_text=_("产废单位出售废弃物；回收利用单位购买并利用或处置。"),
    )
    region = forms.RegexField(
        label=_("注册地（区县）"),
        regex=r"^\d{6}$",
        error_messages={"invalid": _("请填写 6 位数字的区县行政区划代码。")},
        help_text=_("营业执照登记地所在区县，例如 130203（河北省唐山市路北区）。"),
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
    address = forms.CharField(label=_("详细地址"), max_length=255)
    contact_name = forms.CharField(label=_("联系人"), max_length=64)
    contact_phone = forms.CharField(
        label=_("联系电话"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    contact_email = forms.EmailField(label=_("联系邮箱"), required=False)
    description = forms.CharField(
        label=_("单位简介"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("主营业务、产生或利用的废弃物种类、年产生量或处理能力等。"),
    )


class OrganisationEditForm(OrganisationForm):
    """The same fields without the USCC, which identifies the organisation and cannot change."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["uscc"]


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("邮箱"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(label=_("角色"), choices=MemberRole.choices, initial=MemberRole.TRADER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("角色"), choices=MemberRole.choices)


class LicenceForm(forms.Form):
    kind = forms.ChoiceField(label=_("资质类型"), choices=LicenceKind.choices)
    number = forms.CharField(label=_("证书编号"), max_length=64)
    issuer = forms.CharField(label=_("发证机关"), max_length=128, help_text=_("例如：河北省生态环境厅。"))
    valid_from = forms.DateField(
        label=_("有效期起"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    valid_to = forms.DateField(
        label=_("有效期至"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    hw_codes = forms.CharField(
        label=_("经营危险废物类别"),
        required=False,
        max_length=400,
        help_text=_("仅危险废物经营许可证填写，多个类别用逗号分隔，例如：HW08, HW49。"),
    )
    annual_capacity_t = forms.DecimalField(
        label=_("年经营规模（吨）"),
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=3,
        help_text=_("危险废物经营许可证核准的年经营规模。"),
    )
    document = forms.FileField(
        label=_("证书扫描件"),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        megabytes = settings.LICENCE_DOCUMENT_MAX_BYTES // (1024 * 1024)
        self.fields["document"].help_text = gettext(
            "PDF、JPG 或 PNG 文件，最大 %(mb)d MB。系统按文件内容识别类型。"
        ) % {"mb": megabytes}
