"""The Create Job form: field types and JSON parsing; the rules are in jobs.services."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from planqk_portal.errors import ApplicationError

from . import schema_form
from .models import JobStatus
from .services import input_check

#: How many key-value rows the params editor shows at least (more are added in the page).
KV_ROWS = 3
KV_MAX_ROWS = 100

#: Which form field shows an ApplicationError of admission, by code or code prefix.
ERROR_FIELDS = {
    "datapool": "data_file",
    "service": "service",
}


def parse_json_object(text: str, *, label: str) -> dict[str, Any] | None:
    """Parse a textarea as a JSON object (blank: none); a ValidationError says what is wrong."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise forms.ValidationError(f"{label} is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"{label} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise forms.ValidationError(f"{label} is not valid JSON: {exc}.") from None
    try:
        return input_check(value, name=label)
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def kv_value(text: str) -> Any:
    """A key-value row's value: JSON when it reads as JSON (3, true, [1, 2], "x"), else the text."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


class JobCreateForm(forms.Form):
    #: Set by the view: a current-generation version takes its input as one object, no params.
    current_generation = False
    service = forms.ChoiceField(label="Service")
    data_mode = forms.ChoiceField(
        choices=[("json", "JSON"), ("datapool", "From a data pool")], initial="json", widget=forms.RadioSelect
    )
    data = forms.CharField(
        label="Input data (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        help_text='The "data" of the service, e.g. {"values": [1, 2, 3]}. At most 1 MB.',
    )
    data_file = forms.ChoiceField(label="Data pool file", required=False)
    params_mode = forms.ChoiceField(
        choices=[("kv", "Key-value pairs"), ("json", "JSON"), ("datapool", "From a data pool")],
        initial="json",
        widget=forms.RadioSelect,
    )
    params = forms.CharField(
        label="Parameters (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}),
        help_text='The "params" of the service, e.g. {"shots": 1024}. At most 1 MB.',
    )
    params_file = forms.ChoiceField(label="Data pool file", required=False)
    save_result = forms.BooleanField(label="Save the result to a data pool", required=False)
    result_pool = forms.ChoiceField(label="Data pool", required=False)

    def __init__(
        self,
        *args: Any,
        services: list[tuple[Any, Any]],
        files: list[Any],
        pools: list[Any],
        data_tree: schema_form.SchemaField | None = None,
        params_tree: schema_form.SchemaField | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # The chosen service's schemas as form fields (None: its spec describes no fields).
        self.trees = {"data": data_tree, "params": params_tree}
        self.unplaced_errors: dict[str, list[str]] = {"data": [], "params": []}
        for name, tree in self.trees.items():
            mode = self.fields[f"{name}_mode"]
            if tree is not None:
                mode.choices = [("form", "Form"), *mode.choices]
                mode.initial = "form"
        self.versions = {str(service.pk): version for service, version in services}
        self.fields["service"].choices = [("", "Choose a service…")] + [
            (str(service.pk), f"{service.display_name} ({service.name} {version.version})")
            for service, version in services
        ]
        self.files = {str(f.pk): f for f in files}
        self.fields["data_file"].choices = [("", "Choose a JSON file…")] + [
            (str(f.pk), f"{f.pool.name} / {f.descriptor.name} / {f.name}") for f in files
        ]
        self.fields["params_file"].choices = self.fields["data_file"].choices
        self.pools = {str(p.pk): p for p in pools}
        self.fields["result_pool"].choices = [("", "A new data pool")] + [(str(p.pk), p.name) for p in pools]
        self.kv_rows = self._kv_rows()

    def _kv_rows(self) -> list[tuple[str, str]]:
        """The key-value rows as submitted (or as prefilled), plus empty ones to type into."""
        rows: list[tuple[str, str]] = []
        source = self.data if self.is_bound else self.initial
        keys = source.getlist("kv_key") if hasattr(source, "getlist") else source.get("kv_key", [])
        values = source.getlist("kv_value") if hasattr(source, "getlist") else source.get("kv_value", [])
        for index, key in enumerate(keys[:KV_MAX_ROWS]):
            value = values[index] if index < len(values) else ""
            if key.strip() or value.strip():
                rows.append((key, value))
        return rows + [("", "")] * max(KV_ROWS - len(rows), 1)

    def _clean_schema_fields(self, name: str, label: str) -> dict[str, Any] | None:
        tree = self.trees[name]
        if tree is None:
            raise forms.ValidationError(f"This service's API spec describes no fields: enter the {label} as JSON.")
        value, ok = schema_form.parse(tree, self.data)
        if not ok:
            raise forms.ValidationError("Some fields need a fix (see below).")
        try:
            return input_check(value, name=label.capitalize()) if value else None
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None

    def place_input_errors(self, errors: list[dict[str, str]]) -> None:
        """The 422's ``errors`` on the fields they name (form mode) or under the JSON box."""
        for name in ("data", "params"):
            mine = [e for e in errors if str(e.get("path", "")).split(".")[0].split("[")[0] == name]
            if not mine:
                continue
            if self.data.get(f"{name}_mode") == "form" and self.trees[name] is not None:
                self.unplaced_errors[name] += schema_form.place_errors(self.trees[name], mine)
                self.add_error(name, "The service's API spec does not accept this input (see the fields below).")
            else:
                self.add_error(name, [f"{e['path']}: {e['message']}" for e in mine])

    def clean_data(self) -> dict[str, Any] | None:
        if self.data.get("data_mode") == "datapool":
            return None
        if self.data.get("data_mode") == "form":
            return self._clean_schema_fields("data", "input data")
        return parse_json_object(self.cleaned_data.get("data", ""), label="Input data")

    def clean_params(self) -> dict[str, Any] | None:
        if self.data.get("params_mode") == "datapool":
            return None
        if self.data.get("params_mode") == "form":
            return self._clean_schema_fields("params", "parameters")
        if self.data.get("params_mode") == "kv":
            params: dict[str, Any] = {}
            for key, value in self.kv_rows:
                key = key.strip()
                if not key and value.strip():
                    raise forms.ValidationError(f"The value {value!r} has no key.")
                if key:
                    if key in params:
                        raise forms.ValidationError(f"The key {key!r} is given twice.")
                    params[key] = kv_value(value.strip())
            try:
                return input_check(params, name="Parameters") if params else None
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return parse_json_object(self.cleaned_data.get("params", ""), label="Parameters")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        pool_fields = (("data_mode", "data_file", "input data"), ("params_mode", "params_file", "parameters"))
        for mode, field, what in pool_fields:
            if cleaned.get(mode) != "datapool":
                continue
            if not cleaned.get(field):
                self.add_error(field, f"Choose a file, or enter the {what} as JSON.")
            elif cleaned[field] not in self.files:
                self.add_error(field, "This file is not one you can read.")
        if cleaned.get("result_pool") and cleaned["result_pool"] not in self.pools:
            self.add_error("result_pool", "This data pool is not one you can write into.")
        return cleaned

    def selected_version(self) -> Any:
        return self.versions.get(self.cleaned_data.get("service") or "")

    def data_ref(self) -> dict[str, str] | None:
        if self.cleaned_data.get("data_mode") != "datapool":
            return None
        return self.files[self.cleaned_data["data_file"]].reference

    def params_ref(self) -> dict[str, str] | None:
        if self.cleaned_data.get("params_mode") != "datapool":
            return None
        return self.files[self.cleaned_data["params_file"]].reference

    def result_pool_object(self) -> Any:
        return self.pools.get(self.cleaned_data.get("result_pool") or "")


class JobFilterForm(forms.Form):
    service = forms.ChoiceField(required=False, label="Service")
    status = forms.ChoiceField(required=False, label="Status", choices=[("", "Any status"), *JobStatus.choices])

    def __init__(self, *args: Any, services: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [("", "Any service")] + [
            (str(service.pk), service.display_name) for service in services
        ]
