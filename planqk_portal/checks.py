"""System checks that catch a misconfigured deployment at start-up."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def runtime_setting(app_configs, **kwargs):  # noqa: ANN001, ANN201
    problems = []
    if settings.PLANQK_RUNTIME not in {"local", "docker"}:
        problems.append(
            Warning(
                f"PLANQK_RUNTIME is {settings.PLANQK_RUNTIME!r}; use 'local' or 'docker'.",
                id="planqk.W001",
            )
        )
    return problems
