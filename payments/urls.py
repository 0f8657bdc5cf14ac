from django.urls import path

from . import views

app_name = "payments"
urlpatterns = [
    path("", views.index, name="index"),
    path("setup-intent/", views.setup_intent, name="setup-intent"),
    path("cards/confirm/", views.card_from_setup_intent, name="card-confirm"),
    path("cards/<uuid:card_id>/remove/", views.card_remove, name="card-remove"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<uuid:invoice_id>/", views.invoice_detail, name="invoice"),
    path("invoices/<uuid:invoice_id>/pay/", views.invoice_pay, name="invoice-pay"),
    path("earnings/", views.earnings, name="earnings"),
    path("earnings/usage.csv", views.earnings_csv, name="earnings-csv"),
    path("usage/", views.usage, name="usage"),
    path("usage/usage.csv", views.usage_csv, name="usage-csv"),
    path("webhooks/stripe/", views.stripe_webhook, name="stripe-webhook"),
]
