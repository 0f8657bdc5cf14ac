from django.urls import path

from . import views

urlpatterns = [
    path("payments/cards/", views.CardListView.as_view(), name="api-payments-cards"),
    path("payments/cards/<uuid:card_id>/", views.CardDetailView.as_view(), name="api-payments-card"),
    path("payments/setup-intents/", views.SetupIntentView.as_view(), name="api-payments-setup-intent"),
    path("payments/invoices/", views.InvoiceListView.as_view(), name="api-payments-invoices"),
    path("payments/invoices/<uuid:invoice_id>/", views.InvoiceDetailView.as_view(), name="api-payments-invoice"),
    path("payments/earnings/", views.EarningsListView.as_view(), name="api-payments-earnings"),
    path("payments/earnings/summary/", views.EarningsSummaryView.as_view(), name="api-payments-earnings-summary"),
    path("payments/usage/", views.UsageView.as_view(), name="api-payments-usage"),
]
