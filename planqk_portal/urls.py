"""URL map. Each app owns its HTML urls (``<app>/urls.py``) and API urls (``<app>/api/urls.py``)."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from . import views

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("services.api.urls")),
    path("", include("applications.api.urls")),
    path("", include("jobs.api.urls")),
    path("", include("datapools.api.urls")),
    path("", include("marketplace.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("algorithms.api.urls")),
    path("", include("planqk_portal.api_urls")),
]

# The admin has no login form of its own: it sends people to the portal's (throttled) login.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    # First: the service API is the hot path, and Django tries the patterns in order.
    path("gateway/", include("applications.gateway.urls")),
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("templates/template.zip", views.template_zip, name="template-zip"),
    path("templates/template.tar.gz", views.template_tar_gz, name="template-tar-gz"),
    path("accounts/", include("allauth.urls")),
    path("settings/", include("accounts.urls")),
    path("settings/payments/", include("payments.urls")),
    path("services/", include("services.urls")),
    path("marketplace/", include("marketplace.urls")),
    path("applications/", include("applications.urls")),
    path("jobs/", include("jobs.urls")),
    path("datapools/", include("datapools.urls")),
    path("algorithms/", include("algorithms.urls")),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]

# Nothing under MEDIA_URL is served, in any mode: stored files are reachable only through the
# download views, which apply the same permission checks as the API.

handler404 = "planqk_portal.views.not_found"
handler500 = "planqk_portal.views.server_error"
