"""Forms of the services pages: field types only; the rules are in services.services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from .models import PlanKind, QuantumBackend, SourceType
from .services import resource_bounds

#: Which form field shows an ApplicationError, by the prefix or the whole of its code.
ERROR_FIELDS = {
    "upload": "file",
    "spec": "api_spec",
    "version": "version",
    "service:bad-name": "name",
    "service:name-taken": "name",
    "service:bad-backend": "quantum_backend",
    "service:provider-token-missing": "quantum_backend",
    "service:bad-url": "external_url",
    "service:description-too-long": "description",
    "plan": "plan_free",
}


def field_for_error(code: str, form: forms.Form) -> str | None:
    """The form field an error code belongs to (None: the whole form)."""
    name = ERROR_FIELDS.get(code) or ERROR_FIELDS.get(code.split(":", 1)[0])
    return name if name in form.fields else None


def _or_default(value: Any, default: int) -> Any:
    return default if value is None else value


class _ResourcesMixin(forms.Form):
    memory_mb = forms.IntegerField(label="Memory (MB)")
    cpus = forms.DecimalField(label="CPUs", decimal_places=2, max_digits=4)
    timeout_seconds = forms.IntegerField(label="Timeout (seconds)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (low, default, high) in resource_bounds().items():
            field = self.fields[name]
            field.widget.attrs.update({"min": low, "max": high, "step": "0.1" if name == "cpus" else "1"})
            field.help_text = f"{low} to {high}"
            if not self.is_bound and name not in self.initial:
                self.initial[name] = default


class ServiceCreateForm(_ResourcesMixin):
    name = forms.CharField(
        max_length=64,
        help_text="Lower-case letters, digits and dashes; it becomes part of your service's URL.",
        widget=forms.TextInput(attrs={"placeholder": "my-service", "autocomplete": "off"}),
    )
    title = forms.CharField(
        label="Display name", max_length=120, required=False, help_text="Shown to other users; the name when empty."
    )
    source = forms.ChoiceField(
        label="Service import", choices=SourceType.choices, initial=SourceType.FILE, widget=forms.RadioSelect
    )
    file = forms.FileField(
        label="User code (user_code.zip)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    external_url = forms.CharField(
        label="URL of your running service",
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://quantum.example.org/my-service/"}),
    )
    api_spec = forms.FileField(
        label="API specification (OpenAPI 3, optional)",
        required=False,
        help_text="Without one, the archive's openapi-spec.yml or the template's generic spec is used.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yml,.yaml,.json"}),
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown. Shown in the marketplace."
    )
    quantum_backend = forms.ChoiceField(choices=QuantumBackend.choices, initial=QuantumBackend.NONE)
    plan_free = forms.BooleanField(label="Free", required=False, initial=True)
    plan_per_execution = forms.BooleanField(label="Per execution", required=False)
    per_execution_price = forms.DecimalField(
        label="Price per execution", required=False, min_value=Decimal("0.01"), max_digits=9, decimal_places=2
    )
    per_execution_rpm = forms.IntegerField(label="Requests per minute", required=False, initial=120)
    per_execution_concurrency = forms.IntegerField(label="Executions at once", required=False, initial=5)
    plan_monthly = forms.BooleanField(label="Monthly", required=False)
    monthly_price = forms.DecimalField(
        label="Price per month", required=False, min_value=Decimal("0.01"), max_digits=9, decimal_places=2
    )
    monthly_rpm = forms.IntegerField(label="Requests per minute", required=False, initial=120)
    monthly_concurrency = forms.IntegerField(label="Executions at once", required=False, initial=5)
    version = forms.CharField(
        max_length=32, required=False, widget=forms.TextInput(attrs={"placeholder": "1.0.0"}), help_text="Default 1.0.0"
    )
    skip_example_run = forms.BooleanField(
        label="Skip the example run in builds",
        required=False,
        help_text="Each build checks that the code imports and runs the API spec's example input once; skip the "
        "example for services that need hardware tokens.",
    )

    @property
    def max_upload_mb(self) -> int:
        return int(settings.PLANQK_MAX_UPLOAD_MB)

    def plan_items(self) -> list[tuple[str, dict[str, Any]]]:
        """The chosen plans as (the form field their errors go to, terms for plan_terms_check)."""
        values = self.cleaned_data
        items = []
        if values.get("plan_free"):
            items.append(("plan_free", {"name": "Free", "kind": PlanKind.FREE, "price_cents": 0}))
        for prefix, kind, name in (
            ("per_execution", PlanKind.PER_EXECUTION, "Per execution"),
            ("monthly", PlanKind.MONTHLY, "Monthly"),
        ):
            if not values.get(f"plan_{prefix}"):
                continue
            price = values.get(f"{prefix}_price")
            terms = {
                "name": name,
                "kind": kind,
                "price_cents": int(price * 100) if price is not None else 0,
                "requests_per_minute": _or_default(values.get(f"{prefix}_rpm"), 120),
                "max_concurrent": _or_default(values.get(f"{prefix}_concurrency"), 5),
            }
            items.append((f"{prefix}_price", terms))
        return items


class ServiceEditForm(_ResourcesMixin):
    title = forms.CharField(label="Display name", max_length=120, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 8}), help_text="Markdown.")
    quantum_backend = forms.ChoiceField(choices=QuantumBackend.choices)
    retry_on_host_loss = forms.BooleanField(
        label="Run again on another host when a worker host is lost",
        required=False,
        help_text="Only for executions that have produced no interim result yet; turn it off when a run may "
        "already have paid for hardware time. Otherwise such an execution fails unbilled (platform:host-lost).",
    )


class ServiceVersionForm(forms.Form):
    file = forms.FileField(
        label="User code (user_code.zip)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    external_url = forms.CharField(label="URL of the new version", required=False, widget=forms.URLInput())
    api_spec = forms.FileField(
        label="API specification (OpenAPI 3, optional)",
        required=False,
        help_text="Without one, the archive's openapi-spec.yml or the previous version's spec is kept.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yml,.yaml,.json"}),
    )
    version = forms.CharField(max_length=32, required=False, help_text="Default: the next patch number")
    skip_example_run = forms.BooleanField(
        label="Skip the example run in builds",
        required=False,
        help_text="The build checks that the code imports and runs the API spec's example input once; skip the "
        "example for services that need hardware tokens. Applies to this and later builds of the service.",
    )


class PublishForm(forms.Form):
    """The publish flow's choices: visibility, the default version, the plans kept and one to add."""

    lifecycle = forms.ChoiceField(
        label="Visibility",
        widget=forms.RadioSelect,
        choices=[
            ("PUBLISHED", "In the marketplace: anyone can subscribe"),
            ("ACCESSIBLE", "Internal use: only your own applications can subscribe"),
        ],
        initial="PUBLISHED",
    )
    version = forms.ChoiceField(
        label="Default version", help_text="The version callers get; a newer READY build replaces it."
    )
    keep_plans = forms.MultipleChoiceField(label="Plans offered", required=False, widget=forms.CheckboxSelectMultiple)
    new_kind = forms.ChoiceField(
        label="Add a plan",
        required=False,
        choices=[
            ("", "No new plan"),
            (PlanKind.FREE, "Free"),
            (PlanKind.PER_EXECUTION, "Per execution"),
            (PlanKind.MONTHLY, "Monthly"),
        ],
    )
    new_name = forms.CharField(label="Its name", required=False, max_length=60)
    new_price = forms.DecimalField(
        label="Its price", required=False, min_value=Decimal("0"), max_digits=9, decimal_places=2
    )
    new_rpm = forms.IntegerField(label="Requests per minute", required=False, initial=120)
    new_concurrency = forms.IntegerField(label="Executions at once", required=False, initial=5)

    def __init__(self, *args: Any, versions: Any, plans: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(str(v.pk), v.version) for v in versions]
        self.fields["keep_plans"].choices = [(str(p.pk), p.name) for p in plans]
        if not self.is_bound:
            self.initial.setdefault("keep_plans", [str(p.pk) for p in plans])

    def new_plan_terms(self) -> dict[str, Any] | None:
        """The plan to add as terms for plan_terms_check, or None."""
        values = self.cleaned_data
        kind = values.get("new_kind")
        if not kind:
            return None
        price = values.get("new_price")
        default_name = dict(self.fields["new_kind"].choices)[kind]
        return {
            "name": values.get("new_name") or default_name,
            "kind": kind,
            "price_cents": int(price * 100) if price is not None else 0,
            "requests_per_minute": _or_default(values.get("new_rpm"), 120),
            "max_concurrent": _or_default(values.get("new_concurrency"), 5),
        }
