from django.urls import path
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
