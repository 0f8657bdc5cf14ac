from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from django.core.checks import register

        from .checks import payment_gateway_settings

        register(payment_gateway_settings)
