from django.urls import path

from . import views

urlpatterns = [
    path("services/", views.ServiceListCreateView.as_view(), name="api-services"),
    path("services/<uuid:service_id>/", views.ServiceDetailView.as_view(), name="api-service"),
    path(
        "services/<uuid:service_id>/publish-internal",
        views.ServicePublishInternalView.as_view(),
        name="api-service-publish-internal",
    ),
    path("services/<uuid:service_id>/publish", views.ServicePublishView.as_view(), name="api-service-publish"),
    path("services/<uuid:service_id>/unpublish", views.ServiceUnpublishView.as_view(), name="api-service-unpublish"),
    path(
        "services/<uuid:service_id>/versions/",
        views.ServiceVersionListCreateView.as_view(),
        name="api-service-versions",
    ),
    path(
        "services/<uuid:service_id>/versions/<uuid:version_id>/",
        views.ServiceVersionDetailView.as_view(),
        name="api-service-version",
    ),
    path(
        "services/<uuid:service_id>/versions/<uuid:version_id>/logs",
        views.ServiceVersionLogsView.as_view(),
        name="api-service-version-logs",
    ),
    path(
        "services/<uuid:service_id>/versions/<uuid:version_id>/cancel",
        views.ServiceVersionCancelView.as_view(),
        name="api-service-version-cancel",
    ),
    path(
        "services/<uuid:service_id>/versions/<uuid:version_id>/retry",
        views.ServiceVersionRetryView.as_view(),
        name="api-service-version-retry",
    ),
    path(
        "services/<uuid:service_id>/versions/<uuid:version_id>/unpublish",
        views.ServiceVersionUnpublishView.as_view(),
        name="api-service-version-unpublish",
    ),
]
