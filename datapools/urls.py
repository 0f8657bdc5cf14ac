from django.urls import path

from . import preview, views

app_name = "datapools"
urlpatterns = [
    path("", views.datapool_list, name="list"),
    path("<uuid:pool_id>/", views.datapool_detail, name="detail"),
    path("<uuid:pool_id>/edit/", views.datapool_edit, name="edit"),
    path("<uuid:pool_id>/delete/", views.datapool_delete, name="delete"),
    path("<uuid:pool_id>/sharing/", views.datapool_sharing, name="sharing"),
    path("<uuid:pool_id>/sharing/<int:share_id>/remove/", views.share_remove, name="share-remove"),
    path("<uuid:pool_id>/upload/", views.file_upload, name="upload"),
    path("<uuid:pool_id>/sources/", views.source_create, name="source-create"),
    path("<uuid:pool_id>/sources/<uuid:source_id>/delete/", views.source_delete, name="source-delete"),
    path("<uuid:pool_id>/files/<uuid:file_id>/download/", views.file_download, name="file-download"),
    path("<uuid:pool_id>/files/<uuid:file_id>/", preview.file_preview, name="file-preview"),
    path("<uuid:pool_id>/files/<uuid:file_id>/delete/", views.file_delete, name="file-delete"),
]
