"""Routes of the price index pages; appended to ``frontend.urls`` (namespace ``frontend``)."""

from django.urls import path

from frontend import views_indices as views

urlpatterns = [
    path("indices/", views.index_list, name="index_list"),
    path("indices/methodology/", views.index_methodology, name="index_methodology"),
    path("indices/<str:code>/", views.index_detail, name="index_detail"),
    path("indices/<str:code>/<str:day>/", views.index_value, name="index_value"),
    path("indices/<str:code>/<str:day>/correct/", views.index_correct, name="index_correct"),
]
