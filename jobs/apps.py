from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from planqk_portal import reaper

        from . import engine, runtime_factory

        reaper.register(engine.job_reap)
        reaper.register(runtime_factory.environments_reap)
