"""The Jobs pages: the list, Create Job, the job page with live status and logs. Thin views."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from planqk_portal.errors import ApplicationError
from planqk_portal.logs import HTMX_STOP_POLLING, render_log_poll

from . import selectors, services
from .admission import execution_admit
from .forms import ERROR_FIELDS, JobCreateForm, JobFilterForm
from .models import Job, JobSource

PAGE_SIZE = 20
INTERIM_SHOWN = 20
RESULT_PREVIEW_CHARS = 200_000


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """The user's jobs, newest first, filtered by service and status."""
    usable = list(selectors.service_list_usable(user=request.user))
    form = JobFilterForm(request.GET or None, services=usable)
    service = status = None
    if form.is_valid():
        service = form.cleaned_data.get("service") or None
        status = form.cleaned_data.get("status") or None
    jobs = selectors.job_list(user=request.user, service=service, status=status)
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("service", service), ("status", status)) if v})
    context = {
        "page_obj": page,
        "jobs": page.object_list,
        "form": form,
        "filtered": bool(service or status),
        "query": query,
        "has_services": bool(usable),
    }
    return render(request, "jobs/list.html", context)


def _initial_from_job(job: Job) -> dict[str, Any]:
    """What "Run again" prefills: the same service, input and settings."""
    initial: dict[str, Any] = {
        "service": str(job.service_id),
        "save_result": job.save_result_to_pool,
        "result_pool": str(job.result_pool_id or ""),
    }
    if job.params_ref:
        initial.update(params_mode="datapool", params_file=job.params_ref.get("fileId", ""))
    else:
        initial.update(params_mode="json", params=json.dumps(job.params, indent=2) if job.params is not None else "")
    if job.data_ref:
        initial.update(data_mode="datapool", data_file=job.data_ref.get("fileId", ""))
    else:
        initial.update(data_mode="json", data=json.dumps(job.data, indent=2) if job.data is not None else "")
    return initial


def _example_initial(version: Any) -> dict[str, str]:
    data, params = selectors.service_version_example(version=version)
    initial = {}
    if data is not None:
        initial["data"] = json.dumps(data, indent=2)
    if params is not None:
        initial["params"] = json.dumps(params, indent=2)
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request: HttpRequest) -> HttpResponse:
    """Create Job: a service, input data (JSON or a data pool file), params, advanced settings."""
    pairs = selectors.services_with_callable_version(user=request.user)
    kwargs = {
        "services": pairs,
        "files": selectors.datapool_files_readable_json(user=request.user),
        "pools": selectors.datapool_list_writable(user=request.user),
    }
    if request.method == "POST":
        form = JobCreateForm(request.POST, **kwargs)
        if form.is_valid():
            version = form.selected_version()
            try:
                job = execution_admit(
                    service_version=version,
                    owner=request.user,
                    data=form.cleaned_data["data"],
                    params=form.cleaned_data["params"],
                    data_ref=form.data_ref(),
                    params_ref=form.params_ref(),
                    source=JobSource.UI,
                    save_result_to_pool=form.cleaned_data["save_result"],
                    result_pool=form.result_pool_object() if form.cleaned_data["save_result"] else None,
                )
            except ApplicationError as exc:
                field = ERROR_FIELDS.get(exc.code.split(":", 1)[0])
                if field == "data_file" and form.cleaned_data.get("data_mode") != "datapool":
                    field = "params_file"  # the only file given was the parameters'
                if exc.code.startswith("input:"):
                    field = "data" if "data" in exc.message.lower() else "params"
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                return redirect("jobs:detail", job_id=job.pk)
    else:
        initial: dict[str, Any] = {}
        again = request.GET.get("from")
        if again:
            try:
                initial = _initial_from_job(selectors.job_get(user=request.user, job_id=again))
            except Http404:
                messages.error(request, "That job does not exist; start a new one.")
        chosen = initial.get("service") or request.GET.get("service", "")
        versions = {str(service.pk): version for service, version in pairs}
        if not again and chosen in versions:
            initial.update(service=chosen, **_example_initial(versions[chosen]))
        form = JobCreateForm(initial=initial, **kwargs)
    return render(request, "jobs/create.html", {"form": form, "has_services": bool(pairs)})


@login_required
@require_GET
def job_example(request: HttpRequest) -> HttpResponse:
    """htmx: the input fields prefilled with the chosen service's example (204 when it has none)."""
    pairs = {str(s.pk): v for s, v in selectors.services_with_callable_version(user=request.user)}
    version = pairs.get(request.GET.get("service", ""))
    example = _example_initial(version) if version is not None else {}
    if not example:
        return HttpResponse(status=204)
    return render(request, "jobs/includes/example.html", {"example": example})


def _job_or_404(request: HttpRequest, job_id: Any) -> Job:
    return selectors.job_get(user=request.user, job_id=job_id)


def _status_context(job: Job) -> dict[str, Any]:
    interim = list(selectors.job_interim_results(job=job).order_by("-seq")[:INTERIM_SHOWN])
    return {
        "job": job,
        "interim_results": [
            {"seq": item.seq, "json": json.dumps(item.payload, ensure_ascii=False)} for item in reversed(interim)
        ],
        "interim_total": interim[0].seq if interim else 0,
        **_result_preview(job),
        "metadata_json": json.dumps(job.result_metadata, indent=2, ensure_ascii=False)
        if job.result_metadata is not None
        else "",
    }


def _result_preview(job: Job) -> dict[str, Any]:
    """The result pretty-printed, cut for the page when huge (the download has all of it)."""
    if job.result is None:
        return {"result_json": "", "result_cut": False}
    text = json.dumps(job.result, indent=2, ensure_ascii=False)
    if len(text) > RESULT_PREVIEW_CHARS:
        return {"result_json": text[:RESULT_PREVIEW_CHARS] + "\n…", "result_cut": True}
    return {"result_json": text, "result_cut": False}


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: Any) -> HttpResponse:
    """The job page: input, status (polled), result, interim results and the live log."""
    job = _job_or_404(request, job_id)
    final = job.is_final  # before the chunks: none written before the end is missed
    chunks = list(selectors.job_log_chunks(job=job))
    context = {
        **_status_context(job),
        "data_json": json.dumps(job.data, indent=2, ensure_ascii=False) if job.data is not None else "",
        "params_json": json.dumps(job.params, indent=2, ensure_ascii=False) if job.params is not None else "",
        "log_chunks": chunks,
        "log_last": chunks[-1].seq if chunks else 0,
        "log_final": final,
        "log_poll_url": reverse("jobs:logs", args=[job.pk]),
    }
    return render(request, "jobs/detail.html", context)


@login_required
@require_GET
def job_status(request: HttpRequest, job_id: Any) -> HttpResponse:
    """htmx poll of the status and result area; 286 stops the polling at a final state."""
    job = _job_or_404(request, job_id)
    response = render(request, "jobs/detail.html#status", _status_context(job))
    if job.is_final:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def job_logs(request: HttpRequest, job_id: Any) -> HttpResponse:
    """htmx poll of the log: only newer chunks; 286 once the job has ended."""
    job = _job_or_404(request, job_id)
    final = job.is_final
    return render_log_poll(
        request, selectors.job_log_chunks(job=job), poll_url=reverse("jobs:logs", args=[job.pk]), final=final
    )


@login_required
@require_GET
def job_result_download(request: HttpRequest, job_id: Any) -> HttpResponse:
    """The result as ``result.json``: ``{"result": ..., "metadata": ...}`` as the service API answers it."""
    job = _job_or_404(request, job_id)
    if job.status != "SUCCEEDED":
        raise Http404("This job has no result.")
    body = json.dumps({"result": job.result, "metadata": job.result_metadata}, indent=2, ensure_ascii=False)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="result.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def job_cancel(request: HttpRequest, job_id: Any) -> HttpResponse:
    """Confirm, then cancel."""
    job = _job_or_404(request, job_id)
    if job.is_final:
        messages.info(request, f"This job has already ended ({job.get_status_display().lower()}).")
        return redirect("jobs:detail", job_id=job.pk)
    if request.method == "POST":
        job = services.job_cancel(job=job)
        if job.is_final:
            messages.success(request, "Job cancelled. It will not start.")
        else:
            messages.success(request, "Cancelling: the execution is being stopped.")
        return redirect("jobs:detail", job_id=job.pk)
    return render(request, "jobs/confirm_cancel.html", {"job": job})
