from django import forms

from .services import DESCRIPTION_MAX, NAME_MAX


class ApplicationForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX, help_text="What calls the services, e.g. “analysis notebook”.")
    description = forms.CharField(max_length=DESCRIPTION_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class BudgetForm(forms.Form):
    """A monthly spending cap in the platform's currency; empty removes it."""

    budget = forms.DecimalField(
        label="Monthly budget",
        required=False,
        min_value=0,
        max_value=1_000_000,
        decimal_places=2,
        help_text="Executions that would pass it are refused (402); you get a notice at 80 %. Empty: no cap.",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal", "placeholder": "no cap"}),
    )
    subscription = forms.UUIDField(required=False, widget=forms.HiddenInput)

    @property
    def budget_cents(self) -> int | None:
        value = self.cleaned_data.get("budget")
        return None if value is None else round(value * 100)


class SubscribeForm(forms.Form):
    plan = forms.TypedChoiceField(coerce=int, label="Service and pricing plan")

    def __init__(self, *args: object, services: list | None = None, user: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        groups = []
        for service in services or []:
            options = [(plan.pk, _plan_label(plan)) for plan in service.plans.all()]
            if options:
                # Other providers' e-mail addresses are not shown: the service's name says what it is.
                mine = " · your service" if user is not None and service.owner_id == user.pk else ""
                groups.append((f"{service.display_name} ({service.name}{mine})", options))
        self.fields["plan"].choices = [("", "Choose a service and plan…"), *groups]


def price_label(*, price_cents: int, currency: str, kind: str) -> str:
    """``free``, ``0.50 EUR per execution`` or ``9.00 EUR per month``."""
    if kind == "FREE" or not price_cents:
        return "free"
    amount = f"{price_cents / 100:.2f} {currency.upper()}"
    return f"{amount} per execution" if kind == "PER_EXECUTION" else f"{amount} per month"


def _plan_label(plan: object) -> str:
    price = price_label(price_cents=plan.price_cents, currency=plan.currency, kind=plan.kind)
    return f"{plan.name} · {price} · {plan.requests_per_minute}/min, {plan.max_concurrent} at once"
