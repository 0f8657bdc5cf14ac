from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from planqk_portal import reaper

        from . import engine

        # The orphan sweep and the environments' collection run per host (hosts.housekeeping).
        reaper.register(engine.job_reap)
