from django.urls import path

from . import views

urlpatterns = [
    path("applications/", views.ApplicationListView.as_view(), name="api-applications"),
    path("applications/<uuid:pk>/", views.ApplicationDetailView.as_view(), name="api-application"),
    path(
        "applications/<uuid:pk>/regenerate-secret",
        views.ApplicationRegenerateSecretView.as_view(),
        name="api-application-regenerate-secret",
    ),
    path("applications/<uuid:pk>/subscriptions/", views.SubscriptionListView.as_view(), name="api-subscriptions"),
    path(
        "applications/<uuid:pk>/subscriptions/<uuid:sid>/",
        views.SubscriptionDetailView.as_view(),
        name="api-subscription",
    ),
]
