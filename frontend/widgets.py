"""Form widgets of the pages."""

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join

_SELECTED = format_html(" {}", "selected")
_NOTHING = format_html("{}", "")


class LongSelect(forms.Select):
    """A select of hundreds of options (the catalogue, the regions) rendered in Python: Django's
    per-option templates cost more than the rest of the lot search page together. Same HTML as
    ``forms.Select`` for what these lists use: options, option groups, the selected value."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group, options, _index in widget["optgroups"]:
            rendered = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                ((o["value"], _SELECTED if o["selected"] else _NOTHING, o["label"]) for o in options),
            )
            parts.append(
                format_html('<optgroup label="{}">{}</optgroup>', group, rendered) if group else rendered
            )
        return format_html(
            '<select name="{}"{}>{}</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            format_html_join("", "{}", ((part,) for part in parts)),
        )
