from django.urls import path

from market.accounts import api

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
    path("auth/signup/", api.SignupView.as_view(), name="api-signup"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("organisations/", api.OrganisationListView.as_view(), name="api-organisations"),
    path("organisations/<int:pk>/", api.OrganisationDetailView.as_view(), name="api-organisation"),
    path(
        "organisations/<int:pk>/decisions/",
        api.OrganisationDecisionView.as_view(),
        name="api-organisation-decision",
    ),
    path("organisations/<int:pk>/members/", api.MemberListView.as_view(), name="api-members"),
    path(
        "organisations/<int:pk>/members/<int:member_id>/", api.MemberDetailView.as_view(), name="api-member"
    ),
    path("organisations/<int:pk>/invitations/", api.InvitationListView.as_view(), name="api-invitations"),
    path(
        "organisations/<int:pk>/invitations/<int:invitation_id>/",
        api.InvitationDetailView.as_view(),
        name="api-invitation",
    ),
    path("invitations/<str:token>/accept/", api.InvitationAcceptView.as_view(), name="api-invitation-accept"),
    path("organisations/<int:pk>/licences/", api.LicenceListView.as_view(), name="api-licences"),
    path(
        "organisations/<int:pk>/licences/<int:licence_id>/",
        api.LicenceDetailView.as_view(),
        name="api-licence",
    ),
    path(
        "organisations/<int:pk>/licences/<int:licence_id>/document/",
        api.LicenceDocumentView.as_view(),
        name="api-licence-document",
    ),
    path(
        "organisations/<int:pk>/licences/<int:licence_id>/decisions/",
        api.LicenceDecisionView.as_view(),
        name="api-licence-decision",
    ),
]
