from django.urls import path

from . import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_create, name="create"),
    path("new/example", views.job_example, name="example"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/status", views.job_status, name="status"),
    path("<uuid:job_id>/logs", views.job_logs, name="logs"),
    path("<uuid:job_id>/result.json", views.job_result_download, name="result"),
    path("<uuid:job_id>/files/<int:file_id>", views.job_result_file_download, name="result-file"),
    path("<uuid:job_id>/files/<int:file_id>/save", views.job_result_file_save, name="result-file-save"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
]
