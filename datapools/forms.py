from django import forms

from .models import Permission, Visibility


class DataPoolForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="E.g. “Portfolio QUBOs” or “Sum example”.")
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="Optional."
    )


class UploadForm(forms.Form):
    file = forms.FileField(allow_empty_file=True)
    source = forms.ChoiceField(label="Data source")

    def __init__(self, *args: object, sources: list = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [(str(s.pk), s.name) for s in sources]


class DataSourceForm(forms.Form):
    name = forms.CharField(max_length=120, label="Data source name", help_text="E.g. “inputs” or “results”.")


class ShareForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    permission = forms.ChoiceField(choices=Permission.choices, initial=Permission.READ)


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(choices=Visibility.choices, widget=forms.RadioSelect)
