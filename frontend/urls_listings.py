"""Routes of the listings pages; appended to ``frontend.urls`` (namespace ``frontend``)."""

from django.urls import path

from frontend import views_listings as views

urlpatterns = [
    # lots
    path("lots/", views.lot_search, name="lot_search"),
    path("lots/new/", views.lot_create, name="lot_create"),
    path("lots/spec-fields/", views.lot_spec_fields, name="lot_spec_fields"),
    path("lots/<int:pk>/", views.lot_detail, name="lot"),
    path("lots/<int:pk>/edit/", views.lot_edit, name="lot_edit"),
    path("lots/<int:pk>/submit/", views.lot_submit, name="lot_submit"),
    path("lots/<int:pk>/withdraw/", views.lot_withdraw, name="lot_withdraw"),
    path("lots/<int:pk>/media/", views.lot_media_add, name="lot_media_add"),
    path("lots/<int:pk>/media/list/", views.lot_media_list, name="lot_media_list"),
    path("lots/<int:pk>/media/<int:media_id>/remove/", views.lot_media_remove, name="lot_media_remove"),
    path("my/lots/", views.my_lots, name="my_lots"),
    # wanted listings and offers
    path("wanted/", views.wanted_list, name="wanted_list"),
    path("wanted/new/", views.wanted_create, name="wanted_create"),
    path("wanted/<int:pk>/", views.wanted_detail, name="wanted_detail"),
    path("wanted/<int:pk>/offers/", views.offer_create, name="offer_create"),
    path("wanted/<int:pk>/withdraw/", views.wanted_withdraw, name="wanted_withdraw"),
    # saved searches
    path("my/searches/", views.saved_searches, name="saved_searches"),
    path("my/searches/new/", views.saved_search_create, name="saved_search_create"),
    path("my/searches/<int:pk>/delete/", views.saved_search_delete, name="saved_search_delete"),
]
