from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"
    verbose_name = "Applications"

    def ready(self) -> None:
        from planqk_portal import reaper

        from . import services

        reaper.register(services.access_token_purge_expired)
