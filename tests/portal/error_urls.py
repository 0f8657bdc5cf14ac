"""A URL map for the error-page tests: the portal's own, plus views that fail on purpose."""

from django.core.exceptions import PermissionDenied
from django.urls import path

from planqk_portal.urls import handler404, handler500  # noqa: F401
from planqk_portal.urls import urlpatterns as portal_urlpatterns


def crash(request):
    raise RuntimeError("secret detail /srv/planqk/settings.py")


def forbidden(request):
    raise PermissionDenied("secret reason")


urlpatterns = [path("test-crash/", crash), path("test-forbidden/", forbidden), *portal_urlpatterns]
