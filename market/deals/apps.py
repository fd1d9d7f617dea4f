from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DealsConfig(AppConfig):
    name = "market.deals"
    label = "deals"
    verbose_name = _("履约结算")

    def ready(self):
        from market.deals import receivers  # noqa: F401  (award -> deal, deposit moves -> ledger)
