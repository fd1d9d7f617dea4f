"""The page form of the price indices: an operator publishes a correction (更正) of a published day.

As elsewhere, the form checks what the person typed; the rules (which values move, by how much,
within which window, the notices) live in ``pricing.indices.index_correct``. The form only refuses
what would certainly publish nothing: a value not yet published, or one past the correction window.
"""

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _


class IndexCorrectionForm(forms.Form):
    reason = forms.CharField(
        label=_("更正原因"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("将随更正公告公开发布，例如“一笔成交单价录入有误，已撤销”。"),
        error_messages={"required": _("请填写更正原因，它将公开发布在更正公告中。")},
    )
    confirm = forms.BooleanField(
        label=_(
            "我已核对：按现有成交重新计算该交易日的全部指数，变动达到更正阈值的将公开发布更正公告，发布后不可撤回。"
        ),
        error_messages={"required": _("请勾选确认后再发布更正。")},
    )

    def __init__(self, *args, published: bool, deadline: date | None, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.published, self.deadline, self.today = published, deadline, today

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(self.fields["reason"].error_messages["required"], code="required")
        return reason

    def clean(self):
        cleaned = super().clean()
        if not self.published:
            raise forms.ValidationError(_("该指数值尚未正式发布，无需更正。"), code="unpublished")
        if self.deadline is not None and self.today > self.deadline:
            raise forms.ValidationError(
                _("该指数值的更正期限（%(deadline)s）已过，按编制方法已为最终值，不能再更正。")
                % {"deadline": self.deadline.isoformat()},
                code="too_late",
            )
        return cleaned
