from django import forms

from .models import Provider, TokenScope

EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "No expiry")]


class PersonalAccessTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “laptop CLI”.")
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices, initial=[TokenScope.API], widget=forms.CheckboxSelectMultiple
    )
    expires_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, initial="30", required=False, label="Expires in"
    )


class ProviderTokenForm(forms.Form):
    provider = forms.ChoiceField(choices=Provider.choices, widget=forms.HiddenInput)
    value = forms.CharField(
        label="Token", max_length=4096, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
    )
