from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from services.models import PlanKind, QuantumBackend

from .selectors import ORDERINGS, PRICING_FILTERS


class MarketplaceFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    backend = forms.ChoiceField(
        required=False, choices=[("", "Any quantum backend"), *QuantumBackend.choices], label="Quantum backend"
    )
    pricing = forms.ChoiceField(
        required=False, choices=[("", "Free or paid"), *PRICING_FILTERS.items()], label="Pricing"
    )
    sort = forms.ChoiceField(
        required=False, choices=[(key, label) for key, (label, _) in ORDERINGS.items()], label="Sort by"
    )


class PlanForm(forms.Form):
    name = forms.CharField(max_length=60, help_text="Shown to subscribers, e.g. “Basic” or “Research”.")
    kind = forms.ChoiceField(choices=PlanKind.choices, label="Kind")
    price = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=9,
        decimal_places=2,
        label="Price",
        help_text="Per execution or per month; leave empty for a free plan.",
    )
    requests_per_minute = forms.IntegerField(min_value=1, max_value=10_000, initial=120)
    max_concurrent = forms.IntegerField(min_value=1, max_value=100, initial=5, label="Concurrent executions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["price"].label = f"Price ({settings.PLANQK_CURRENCY.upper()})"

    @property
    def price_cents(self) -> int:
        price = self.cleaned_data.get("price")
        return int((price or Decimal("0")) * 100)


class SubscribeForm(forms.Form):
    application = forms.ChoiceField(label="Application")
    plan = forms.ChoiceField(label="Pricing plan", widget=forms.RadioSelect)

    def __init__(self, *args: Any, applications: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["application"].choices = [(str(app.pk), app.name) for app in applications]
        self.fields["plan"].choices = [(str(plan.pk), plan.name) for plan in plans]
        if len(self.fields["plan"].choices) == 1:
            self.fields["plan"].initial = self.fields["plan"].choices[0][0]


class SubscribeFlowForm(forms.Form):
    """Subscribe from a service page: an application (or a new one, named here) and a plan."""

    application = forms.ChoiceField(label="Application", required=False)
    new_application = forms.CharField(
        label="Name of the new application",
        required=False,
        max_length=100,
        help_text="It holds the consumer key and secret you call the service with.",
    )
    plan = forms.ChoiceField(label="Pricing plan", widget=forms.RadioSelect)

    def __init__(self, *args: Any, applications: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["application"].choices = [(str(app.pk), app.name) for app in applications] + [
            ("", "A new application…")
        ]
        self.fields["plan"].choices = [(str(plan.pk), plan.name) for plan in plans]
        if applications:
            self.fields["application"].initial = str(applications[0].pk)
        if len(self.fields["plan"].choices) == 1:
            self.fields["plan"].initial = self.fields["plan"].choices[0][0]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("application") and not (data.get("new_application") or "").strip():
            self.add_error("new_application", "Name the new application, or choose one of yours.")
        return data
