from django.urls import path

from . import views

app_name = "services"
urlpatterns = [
    path("", views.service_list, name="list"),
    path("create/", views.service_create, name="create"),
    path("<uuid:service_id>/", views.service_detail, name="detail"),
    path("<uuid:service_id>/edit/", views.service_edit, name="edit"),
    path("<uuid:service_id>/delete/", views.service_delete, name="delete"),
    path("<uuid:service_id>/publish-internal/", views.service_publish_internal, name="publish-internal"),
    path("<uuid:service_id>/publish/", views.service_publish, name="publish"),
    path("<uuid:service_id>/publish/flow/", views.service_publish_flow, name="publish-flow"),
    path("<uuid:service_id>/state/", views.service_state, name="state"),
    path("<uuid:service_id>/unpublish/", views.service_unpublish, name="unpublish"),
    path("<uuid:service_id>/versions/new/", views.version_create, name="version-new"),
    path("<uuid:service_id>/versions/<uuid:version_id>/", views.version_detail, name="version"),
    path("<uuid:service_id>/versions/<uuid:version_id>/status/", views.version_status, name="version-status"),
    path("<uuid:service_id>/versions/<uuid:version_id>/archive.zip", views.version_archive, name="version-archive"),
    path("<uuid:service_id>/versions/<uuid:version_id>/logs/", views.version_logs, name="version-logs"),
    path("<uuid:service_id>/versions/<uuid:version_id>/cancel/", views.version_cancel, name="version-cancel"),
    path("<uuid:service_id>/versions/<uuid:version_id>/retry/", views.version_retry, name="version-retry"),
    path("<uuid:service_id>/versions/<uuid:version_id>/unpublish/", views.version_unpublish, name="version-unpublish"),
]
