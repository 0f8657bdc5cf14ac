from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils import timezone

_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


class CardForm(forms.Form):
    """Our own card form (the simulator): the same fields Stripe's card element asks for."""

    number = forms.CharField(
        max_length=23,
        label="Card number",
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "cc-number", "placeholder": "4242 4242 4242 4242"}
        ),
    )
    expiry = forms.CharField(
        max_length=9,
        label="Expiry (MM / YY)",
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "12 / 30"}),
    )
    cvc = forms.CharField(
        max_length=4,
        label="CVC",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc", "placeholder": "123"}),
    )

    def clean_number(self) -> str:
        number = re.sub(r"[\s-]", "", self.cleaned_data["number"])
        if not number.isdigit():
            raise forms.ValidationError("Enter the card number with digits only.")
        return number

    def clean_expiry(self) -> tuple[int, int]:
        match = _EXPIRY.match(self.cleaned_data["expiry"])
        if not match:
            raise forms.ValidationError("Enter the expiry as MM / YY, e.g. 12 / 30.")
        month, year = int(match.group(1)), int(match.group(2))
        if year < 100:
            year += (timezone.now().year // 100) * 100
        return month, year

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not cvc.isdigit():
            raise forms.ValidationError("Your card's security code is invalid.")
        return cvc

    @property
    def card_data(self) -> dict[str, Any]:
        month, year = self.cleaned_data["expiry"]
        return {
            "number": self.cleaned_data["number"],
            "exp_month": month,
            "exp_year": year,
            "cvc": self.cleaned_data["cvc"],
        }
