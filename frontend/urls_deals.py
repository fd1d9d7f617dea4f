"""Routes of the deal pages; appended to ``frontend.urls`` (namespace ``frontend``)."""

from django.urls import path

from frontend import views_deals as views

urlpatterns = [
    path("deals/", views.my_deals, name="my_deals"),
    path("deals/<int:pk>/", views.deal_detail, name="deal"),
    path("deals/<int:pk>/pay/", views.deal_pay, name="deal_pay"),
    path("deals/<int:pk>/payments/<int:payment_id>/slip/", views.deal_slip, name="deal_slip"),
    path("deals/<int:pk>/payments/<int:payment_id>/slip/file/", views.deal_slip_file, name="deal_slip_file"),
    path(
        "deals/<int:pk>/payments/<int:payment_id>/confirm/",
        views.deal_payment_confirm,
        name="deal_payment_confirm",
    ),
    path("deals/<int:pk>/pickup/", views.deal_pickup, name="deal_pickup"),
    path("deals/<int:pk>/weighing/", views.deal_weigh, name="deal_weigh"),
    path(
        "deals/<int:pk>/weighings/<int:weighing_id>/ticket/", views.deal_ticket_file, name="deal_ticket_file"
    ),
    path("deals/<int:pk>/confirm/", views.deal_confirm, name="deal_confirm"),
    path("deals/<int:pk>/dispute/", views.deal_dispute, name="deal_dispute"),
    path("deals/<int:pk>/resolve/", views.deal_resolve, name="deal_resolve"),
    path("deals/<int:pk>/manifest/", views.deal_manifest_create, name="deal_manifest"),
    path("deals/<int:pk>/manifest/confirm/", views.deal_manifest_confirm, name="deal_manifest_confirm"),
    path("deals/<int:pk>/manifest/print/", views.deal_manifest_print, name="deal_manifest_print"),
    path("deals/<int:pk>/contract/", views.deal_contract, name="deal_contract"),
    path("deals/<int:pk>/rating/", views.deal_rate, name="deal_rate"),
    path("deals/<int:pk>/runner-up/", views.deal_runner_up, name="deal_runner_up"),
    path("trace/", views.trace_lookup, name="trace_lookup"),
    path("trace/<str:code>/", views.trace_page, name="trace"),
]
