from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Swagger UI's settings come from a script URL of their own (the split view) instead of an inline
# script, so the page keeps the portal's Content-Security-Policy. (Redoc is not offered: it needs
# inline styles and loads its fonts and logo from other sites.)
swagger_ui = SpectacularSwaggerSplitView.as_view(
    url_name="schema",
    template_name="planqk_portal/swagger_ui.html",
    permission_classes=[],
    authentication_classes=[],
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path("docs/", swagger_ui, name="swagger-ui"),
]


# CSRF exempt like the API's views: a POST or DELETE to an unknown path is this JSON 404, not
# the CSRF middleware's HTML 403 (nothing is changed here, so there is nothing to protect).
@csrf_exempt
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Anything else under /api/v1/ is a JSON 404, also in development mode (never Django's page).

    A path that exists with a trailing slash is redirected there, as APPEND_SLASH would.
    """
    if request.method in ("GET", "HEAD") and not request.path.endswith("/"):
        try:
            match = resolve(f"{request.path}/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(f"{request.path}/" + (f"?{query}" if query else ""))
    return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)


# Last of the /api/v1/ patterns (planqk_portal/urls.py includes this module last).
urlpatterns.append(re_path(r"^(?P<path>.*)$", api_not_found, name="api-not-found"))
