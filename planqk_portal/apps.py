from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "planqk_portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # SQLite's WAL mode and busy timeout come from the database OPTIONS (init_command, timeout).
        from . import checks  # noqa: F401  (registers system checks)
