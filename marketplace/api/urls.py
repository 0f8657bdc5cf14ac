from django.urls import path

from .views import MarketplaceServiceDetailView, MarketplaceServiceListView

urlpatterns = [
    path("marketplace/services/", MarketplaceServiceListView.as_view(), name="api-marketplace-services"),
    path(
        "marketplace/services/<uuid:service_id>/",
        MarketplaceServiceDetailView.as_view(),
        name="api-marketplace-service",
    ),
]
