from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Worker hosts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from planqk_portal import reaper

        from .housekeeping import housekeeping_fan_out

        # Whatever only a host can clean is sent to that host (hosts.housekeeping).
        reaper.register(housekeeping_fan_out)
