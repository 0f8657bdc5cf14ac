"""``/gateway/``: the token endpoint and every service's API; JSON answers for every path."""

from django.urls import re_path

from . import views

# A trailing slash is optional everywhere: clients write both, and APPEND_SLASH cannot redirect a POST.
_SERVICE = r"^(?P<context_id>[^/]+)/(?P<service_name>[^/]+)/(?P<version>[^/]+)"
# planqk-service-sdk 2.x joins its paths onto "<endpoint>/": with the endpoint as the portal shows
# it (ending in a slash) that is a double slash, so one or more separate the version and the rest.
_JOB = _SERVICE + r"/+(?P<job_id>[^/]+)"

# No two patterns match the same path (a segment never holds a slash), so the most frequent
# requests come first: status polling, then starting executions.
urlpatterns = [
    re_path(_JOB + r"/?$", views.execution_status, name="gateway-execution"),
    re_path(_SERVICE + r"/*$", views.service_root, name="gateway-service"),
    re_path(r"^token/?$", views.GatewayTokenView.as_view(), name="gateway-token"),
    re_path(_JOB + r"/result/?$", views.execution_result, name="gateway-result"),
    re_path(_JOB + r"/interim-results/?$", views.execution_interim_results, name="gateway-interim-results"),
    re_path(_JOB + r"/result/(?P<file_name>[^/]+)/?$", views.execution_result_file, name="gateway-result-file"),
    re_path(_JOB + r"/logs/?$", views.execution_logs, name="gateway-logs"),
    re_path(_JOB + r"/log/?$", views.execution_log, name="gateway-log"),
    re_path(_JOB + r"/cancel/?$", views.execution_cancel, name="gateway-cancel"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="gateway-not-found"),
]
