from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import path

from frontend import views
from frontend.urls_deals import urlpatterns as deals_urlpatterns
from frontend.urls_indices import urlpatterns as indices_urlpatterns
from frontend.urls_listings import urlpatterns as listings_urlpatterns
from frontend.urls_statistics import urlpatterns as statistics_urlpatterns
from frontend.urls_trading import urlpatterns as trading_urlpatterns

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path(
        "favicon.ico",
        lambda request: redirect(static("frontend/favicon.svg"), permanent=True),
        name="favicon",
    ),
    # accounts
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/complete/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    # organisations
    path("organisations/", views.organisation_list, name="organisation_list"),
    path("organisations/new/", views.organisation_register, name="organisation_register"),
    path("organisations/<int:pk>/", views.organisation, name="organisation"),
    path("organisations/<int:pk>/edit/", views.organisation_edit, name="organisation_edit"),
    path("organisations/<int:pk>/invitations/", views.member_invite, name="member_invite"),
    path(
        "organisations/<int:pk>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "organisations/<int:pk>/members/<int:membership_id>/role/",
        views.member_role_change,
        name="member_role_change",
    ),
    path(
        "organisations/<int:pk>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("organisations/<int:pk>/licences/", views.licence_add, name="licence_add"),
    path(
        "organisations/<int:pk>/licences/<int:licence_id>/document/",
        views.licence_document,
        name="licence_document",
    ),
    # invitations and the acting organisation
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("acting/", views.acting_switch, name="acting_switch"),
]

urlpatterns += listings_urlpatterns
urlpatterns += trading_urlpatterns
urlpatterns += deals_urlpatterns
urlpatterns += indices_urlpatterns
urlpatterns += statistics_urlpatterns
