from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Worker hosts"
    default_auto_field = "django.db.models.BigAutoField"
