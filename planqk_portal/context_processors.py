from typing import Any

from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict[str, Any]:
    """Values every page needs."""
    return {"PLATFORM_NAME": "Quantum Service Platform", "DEBUG": settings.DEBUG}
