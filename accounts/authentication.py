"""DRF authentication by personal access token (Bearer or X-Auth-Token)."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .models import PersonalAccessToken, User
from .services import TOKEN_PREFIX, personal_access_token_authenticate


class PersonalAccessTokenAuthentication(authentication.BaseAuthentication):
    """Accepts ``Authorization: Bearer pqk_...`` and ``X-Auth-Token: pqk_...``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, PersonalAccessToken] | None:
        secret = request.META.get("HTTP_X_AUTH_TOKEN", "").strip()
        if not secret:
            header = authentication.get_authorization_header(request).decode(errors="replace").split()
            if not header or header[0].lower() != self.keyword.lower():
                return None
            if len(header) != 2:
                raise exceptions.AuthenticationFailed("Malformed Authorization header.")
            secret = header[1]
            if not secret.startswith(TOKEN_PREFIX):
                return None  # not ours: e.g. an OAuth2 access token for the gateway
        token = personal_access_token_authenticate(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked personal access token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasApiScope(permissions.BasePermission):
    """Token-authenticated requests need the ``api`` scope (or ``read`` for safe methods)."""

    def has_permission(self, request: Request, view: object) -> bool:
        token = request.auth
        if not isinstance(token, PersonalAccessToken):
            return True
        if "api" in token.scopes:
            return True
        return request.method in ("GET", "HEAD", "OPTIONS") and "read" in token.scopes
