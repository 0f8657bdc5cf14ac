import os
from typing import Any

from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict[str, Any]:
    """Values every page needs; for operators, what isolation user code lacks (PLANQK_SANDBOX=none)."""
    values: dict[str, Any] = {"PLATFORM_NAME": "Quantum Service Platform", "DEBUG": settings.DEBUG}
    user = getattr(request, "user", None)
    if settings.PLANQK_SANDBOX == "none" and user is not None and user.is_staff:
        from runtimes.local.sandbox import isolation_gaps

        # The worker of the embedded default runs as this process's user.
        values["SANDBOX_BANNER"] = isolation_gaps("none", os.geteuid() == 0)
    return values
