from django.urls import path

from . import views

app_name = "algorithms"
urlpatterns = [
    path("", views.algorithm_list, name="list"),
    path("new/", views.algorithm_create, name="create"),
    path("<uuid:algorithm_id>/", views.algorithm_detail, name="detail"),
    path("<uuid:algorithm_id>/edit/", views.algorithm_edit, name="edit"),
    path("<uuid:algorithm_id>/implementations/new/", views.implementation_create, name="implementation-create"),
    path("implementations/<uuid:implementation_id>/", views.implementation_detail, name="implementation"),
    path("implementations/<uuid:implementation_id>/edit/", views.implementation_edit, name="implementation-edit"),
    path("implementations/<uuid:implementation_id>/delete/", views.implementation_delete, name="implementation-delete"),
    path("implementations/<uuid:implementation_id>/files/", views.implementation_file_upload, name="file-upload"),
    path("implementations/<uuid:implementation_id>/git/", views.implementation_git_import, name="git-import"),
    path("implementations/<uuid:implementation_id>/files/table/", views.implementation_files_table, name="files-table"),
    path("files/<uuid:file_id>/create-service/", views.file_create_service, name="file-create-service"),
    path("services/<uuid:service_id>/build/", views.service_build, name="service-build"),
    path("job-api-spec/", views.job_api_spec, name="job-api-spec"),
]
