from django.apps import AppConfig


class AlgorithmsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "algorithms"
    verbose_name = "Algorithms and implementations"

    def ready(self) -> None:
        from planqk_portal import reaper

        from .services import implementation_git_reap

        reaper.register(implementation_git_reap)
