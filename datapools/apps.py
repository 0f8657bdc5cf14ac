from django.apps import AppConfig


class DataPoolsConfig(AppConfig):
    name = "datapools"
    verbose_name = "Data pools"

    def ready(self) -> None:
        from . import signals  # noqa: F401 (connects the receivers)
