from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Services"

    def ready(self) -> None:
        from planqk_portal import reaper

        from .builds import service_builds_reap, service_builds_requeue

        reaper.register(service_builds_reap)
        reaper.register(service_builds_requeue)
