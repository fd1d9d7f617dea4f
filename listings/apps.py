from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ListingsConfig(AppConfig):
    name = "listings"
    verbose_name = _("挂牌")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from listings.models import Lot
        from listings.search.facets_cache import lot_saved_or_deleted

        # Cached search counts are void after any change of a lot (listings.search.facets_cache).
        post_save.connect(lot_saved_or_deleted, sender=Lot, dispatch_uid="listings_lot_search_counts")
        post_delete.connect(lot_saved_or_deleted, sender=Lot, dispatch_uid="listings_lot_search_counts")
