from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("", views.settings_home, name="settings"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("providers/", views.provider_tokens, name="providers"),
    path("providers/<str:provider>/delete/", views.provider_token_delete, name="provider-delete"),
]
