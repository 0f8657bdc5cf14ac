from django.urls import path

from . import views

app_name = "applications"
urlpatterns = [
    path("", views.application_list, name="list"),
    path("<uuid:pk>/", views.application_detail, name="detail"),
    path("<uuid:pk>/regenerate/", views.application_regenerate, name="regenerate"),
    path("<uuid:pk>/delete/", views.application_delete, name="delete"),
    path("<uuid:pk>/subscribe/", views.subscribe, name="subscribe"),
    path("<uuid:pk>/budget/", views.budget, name="budget"),
    path("<uuid:pk>/subscriptions/<uuid:sid>/unsubscribe/", views.unsubscribe, name="unsubscribe"),
]
