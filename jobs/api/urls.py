from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.JobListCreateView.as_view(), name="api-jobs"),
    path("jobs/<uuid:job_id>/", views.JobDetailView.as_view(), name="api-job"),
    path("jobs/<uuid:job_id>/logs", views.JobLogsView.as_view(), name="api-job-logs"),
    path("jobs/<uuid:job_id>/interim-results", views.JobInterimResultsView.as_view(), name="api-job-interim-results"),
    path("jobs/<uuid:job_id>/cancel", views.JobCancelView.as_view(), name="api-job-cancel"),
]
