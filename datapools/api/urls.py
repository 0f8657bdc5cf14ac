from django.urls import path

from . import views

urlpatterns = [
    path("datapools/", views.DataPoolListView.as_view(), name="api-datapool-list"),
    path("datapools/<uuid:pool_id>/", views.DataPoolDetailView.as_view(), name="api-datapool-detail"),
    path("datapools/<uuid:pool_id>/data-sources/", views.DataSourceListView.as_view(), name="api-datapool-sources"),
    path(
        "datapools/<uuid:pool_id>/data-sources/<uuid:source_id>/",
        views.DataSourceDetailView.as_view(),
        name="api-datapool-source-detail",
    ),
    path("datapools/<uuid:pool_id>/files/", views.DataFileListView.as_view(), name="api-datapool-files"),
    path(
        "datapools/<uuid:pool_id>/files/<uuid:file_id>/",
        views.DataFileDetailView.as_view(),
        name="api-datapool-file-detail",
    ),
    path(
        "datapools/<uuid:pool_id>/files/<uuid:file_id>/download",
        views.DataFileDownloadView.as_view(),
        name="api-datapool-file-download",
    ),
    path("datapools/<uuid:pool_id>/shares/", views.ShareListView.as_view(), name="api-datapool-shares"),
    path(
        "datapools/<uuid:pool_id>/shares/<int:share_id>/",
        views.ShareDetailView.as_view(),
        name="api-datapool-share-detail",
    ),
]
