from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PricingConfig(AppConfig):
    name = "pricing"
    verbose_name = _("价格指数与统计")

    def ready(self):
        from pricing import index_tasks  # noqa: F401  (the worker finds the index tasks)
