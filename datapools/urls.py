from django.urls import path

from . import views

app_name = "datapools"
urlpatterns = [path("", views.list, name="list")]
