from django.urls import path

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("organisations/<int:pk>/", views.organisation, name="organisation"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
