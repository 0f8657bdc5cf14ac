from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "planqk_portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        from . import checks  # noqa: F401  (registers system checks)

        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            connection_created.connect(_sqlite_pragmas)


def _sqlite_pragmas(sender, connection, **kwargs) -> None:  # noqa: ANN001
    # WAL must be on before the worker and the web server write at the same time.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout=30000;")
