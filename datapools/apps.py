from django.apps import AppConfig


class DataPoolsConfig(AppConfig):
    name = "datapools"
    verbose_name = "Data pools"
