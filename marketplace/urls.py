from django.urls import path

from . import views

app_name = "marketplace"
urlpatterns = [
    path("", views.service_list, name="list"),
    path("<uuid:service_id>/", views.detail, name="detail"),
    path("<uuid:service_id>/openapi.json", views.openapi_json, name="openapi-json"),
    path("<uuid:service_id>/openapi/download", views.openapi_download, name="openapi-download"),
    path("<uuid:service_id>/subscribe/", views.subscribe, name="subscribe"),
    path("<uuid:service_id>/try/", views.try_it, name="try"),
    path("manage/<uuid:service_id>/plans/", views.plans, name="plans"),
    path("manage/<uuid:service_id>/plans/<int:plan_id>/change/", views.plan_change, name="plan-change"),
    path("manage/<uuid:service_id>/plans/<int:plan_id>/retire/", views.plan_retire, name="plan-retire"),
]
