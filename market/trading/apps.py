from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TradingConfig(AppConfig):
    name = "market.trading"
    label = "trading"
    verbose_name = _("交易")
