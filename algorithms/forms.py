"""Forms of the algorithm pages: plain input; the rules are in :mod:`algorithms.services`."""

from __future__ import annotations

from django import forms

from .models import ProblemClass, Sdk, Visibility


class AlgorithmFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    problem_class = forms.ChoiceField(
        required=False, choices=[("", "All problem classes"), *ProblemClass.choices], label="Problem class"
    )
    tag = forms.CharField(required=False, max_length=40, label="Tag")


class AlgorithmForm(forms.Form):
    name = forms.CharField(max_length=120)
    summary = forms.CharField(max_length=300, help_text="One line.")
    problem_class = forms.ChoiceField(choices=ProblemClass.choices)
    tags = forms.CharField(required=False, max_length=500, help_text="Comma-separated, e.g. qaoa, max-cut")
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Markdown. Formulas in LaTeX: $E = mc^2$ inline, $$\\sum_i x_i$$ on a line of their own.",
    )


class ImplementationForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown.")
    sdk = forms.ChoiceField(choices=Sdk.choices, label="SDK")
    backend = forms.CharField(required=False, max_length=120, help_text="e.g. Qiskit Aer simulator")
    license = forms.CharField(required=False, max_length=64, help_text="e.g. Apache-2.0")
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE)
    shared_with = forms.CharField(
        required=False,
        max_length=2000,
        label="Shared with",
        help_text="E-mail addresses, comma-separated (used when the visibility is “Shared with named users”).",
    )


class ImplementationFileForm(forms.Form):
    file = forms.FileField(help_text="A zip that follows the user code template (src/program.py, requirements.txt, …).")


class GitImportForm(forms.Form):
    url = forms.CharField(
        max_length=500, label="Repository URL", help_text="http(s) only, e.g. https://git.example.org/team/bell.git"
    )
    ref = forms.CharField(required=False, max_length=200, label="Branch or tag", help_text="Empty: the default branch.")
