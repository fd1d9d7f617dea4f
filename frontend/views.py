from django.http import HttpResponse


def home(request):
    return HttpResponse("home")


def login(request):
    return HttpResponse("login")


def organisation(request, pk):
    return HttpResponse("organisation")


def invitation_accept(request, token):
    return HttpResponse("invitation")
