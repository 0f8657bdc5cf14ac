"""Project-wide pages: home, health, template downloads, error pages."""

from __future__ import annotations

import functools

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/gateway/")) or "application/json" in request.headers.get("Accept", "")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what the platform is and where to go next."""
    return render(request, "home.html")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run` checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# kind -> (content type, file name); the archives are built from the package's files, so one
# build per process serves every download.
_TEMPLATE_ARCHIVES = {"zip": ("application/zip", "template.zip"), "tar.gz": ("application/gzip", "template.tar.gz")}


@functools.cache
def _template_archive(kind: str) -> bytes:
    import planqk_template

    return planqk_template.build_zip() if kind == "zip" else planqk_template.build_tar_gz()


def _template_download(kind: str) -> HttpResponse:
    content_type, filename = _TEMPLATE_ARCHIVES[kind]
    response = HttpResponse(_template_archive(kind), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@cache_control(max_age=300)
def template_zip(request: HttpRequest) -> HttpResponse:
    """The user code template as a zip, built from the same files `planqk init` writes."""
    return _template_download("zip")


@require_GET
@cache_control(max_age=300)
def template_tar_gz(request: HttpRequest) -> HttpResponse:
    """The user code template as a tar.gz."""
    return _template_download("tar.gz")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 as JSON for API and gateway clients, as a page for people."""
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 without a stack trace, JSON for API clients."""
    if _wants_json(request):
        return JsonResponse({"code": "server-error", "detail": "The server failed to handle this request."}, status=500)
    return render(request, "500.html", status=500)
