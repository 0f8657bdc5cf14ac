"""The Jobs pages: the list, Create Job, the job page with live status and logs. Thin views."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files import File
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from datapools.selectors import datapool_list_writable
from planqk_portal.errors import ApplicationError
from planqk_portal.logs import HTMX_STOP_POLLING, render_log_poll

from . import result_views, schema_form, selectors, services
from .admission import execution_admit, version_body_schemas, version_input_schemas
from .forms import ERROR_FIELDS, JobCreateForm, JobFilterForm
from .models import Job, JobResultFile, JobSource

logger = logging.getLogger(__name__)

PAGE_SIZE = 20
INTERIM_SHOWN = 20
INTERIM_CHARTED = 500
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


def _trees(version: Any) -> dict[str, schema_form.SchemaField | None]:
    """The version's ``data``/``params`` schemas as form fields (None where there are none)."""
    if version is None:
        return {"data": None, "params": None}
    if selectors.is_current_generation(version):
        # The current generation's input is one object (the request's top-level keys): shown as
        # the data input, with no parameters.
        body = version_body_schemas(service_version=version)
        return {"data": schema_form.build_fields(body.data, root="data"), "params": None}
    schemas = version_input_schemas(service_version=version)
    return {
        "data": schema_form.build_fields(schemas.data, root="data"),
        "params": schema_form.build_fields(schemas.params, root="params"),
    }


def _fill_trees(trees: dict[str, Any], initial: dict[str, Any]) -> None:
    """Show the initial JSON (an example, or the job run again) in the fields; where some of it
    has no field, the JSON mode is chosen so nothing is lost."""
    for name, tree in trees.items():
        if tree is None:
            continue
        text = initial.get(name)
        fits = True
        if text:
            fits = schema_form.fill(tree, json.loads(text))
        if initial.get(f"{name}_mode", "json") == "json" and fits:
            initial[f"{name}_mode"] = "form"
        elif not fits and initial.get(f"{name}_mode") == "form":
            initial[f"{name}_mode"] = "json"


def _create_form(request: HttpRequest, *, pairs: Any, initial: dict[str, Any] | None = None) -> JobCreateForm:
    """Create Job's form for the chosen service: bound to a POST, or prefilled."""
    kwargs: dict[str, Any] = {
        "services": pairs,
        "files": selectors.datapool_files_readable_json(user=request.user),
        "pools": selectors.datapool_list_writable(user=request.user),
    }
    versions = {str(service.pk): version for service, version in pairs}
    if initial is None:
        trees = _trees(versions.get(request.POST.get("service", "")))
        for name, tree in trees.items():
            if tree is not None and request.POST.get(f"{name}_mode") != "form":
                schema_form.fill_from_post(tree, request.POST)
        form = JobCreateForm(request.POST, data_tree=trees["data"], params_tree=trees["params"], **kwargs)
        form.current_generation = selectors.is_current_generation(versions.get(request.POST.get("service", "")))
        return form
    version = versions.get(str(initial.get("service") or ""))
    trees = _trees(version)
    _fill_trees(trees, initial)
    form = JobCreateForm(initial=initial, data_tree=trees["data"], params_tree=trees["params"], **kwargs)
    form.current_generation = selectors.is_current_generation(version)
    return form


def _admission_error(form: JobCreateForm, exc: ApplicationError) -> None:
    """Show admission's refusal on the field it is about."""
    if exc.code == "input:invalid" and exc.extra.get("errors"):
        form.place_input_errors(exc.extra["errors"])
        return
    field = ERROR_FIELDS.get(exc.code.split(":", 1)[0])
    if field == "data_file" and form.cleaned_data.get("data_mode") != "datapool":
        field = "params_file"  # the only file given was the parameters'
    if exc.code.startswith("input:"):
        field = "data" if "data" in exc.message.lower() else "params"
    form.add_error(field if field in form.fields else None, exc.message)


def _convert(request: HttpRequest, versions: dict[str, Any]) -> HttpResponse:
    """Create Job's script switching one input between its form and the JSON box: the values
    entered on one side, as the other side shows them, read and filled by the same code as a
    submitted form (``schema_form.parse`` and ``schema_form.fill``). ``{"text"}`` for the JSON
    box, ``{"html"}`` for the form's fields, ``{"detail"}`` with 422 when they do not carry over."""
    name, to = request.POST.get("convert"), request.POST.get("to")
    if name not in ("data", "params") or to not in ("json", "form"):
        detail = "Say which input to convert (data or params) and to what (json or form)."
        return JsonResponse({"detail": detail}, status=400)
    tree = _trees(versions.get(request.POST.get("service", "")))[name]
    if tree is None:
        return JsonResponse({"detail": "This service's API spec describes no fields for this input."}, status=422)
    if to == "json":
        value, ok = schema_form.parse(tree, request.POST)
        if not ok:
            problems = [f"{item.label}: {' '.join(item.errors)}" for item in tree.walk() if item.errors]
            return JsonResponse({"detail": "Fix these fields first: " + "; ".join(problems)}, status=422)
        return JsonResponse({"text": json.dumps(value, indent=2, ensure_ascii=False)})
    text = request.POST.get(name, "").strip()
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return JsonResponse({"detail": "The JSON box does not hold valid JSON; it stays in JSON mode."}, status=422)
    if not schema_form.fill(tree, value):
        return JsonResponse(
            {"detail": "Part of this JSON has no field in the form, or does not fit its field: it stays in JSON mode."},
            status=422,
        )
    html = render_to_string("jobs/includes/schema_fields.html", {"fields": tree.children}, request=request)
    return JsonResponse({"html": html})


@login_required
@require_http_methods(["GET", "POST"])
def job_create(request: HttpRequest) -> HttpResponse:
    """Create Job: a service, input data (a form from its spec, JSON or a data pool file), params,
    advanced settings."""
    pairs = selectors.services_with_callable_version(user=request.user)
    versions = {str(service.pk): version for service, version in pairs}
    if request.method == "POST" and request.POST.get("convert"):
        return _convert(request, versions)
    if request.method == "POST" and request.POST.get("reload"):
        # Without JavaScript, choosing another service shows its form after this round trip.
        chosen = request.POST.get("service", "")
        initial = {"service": chosen, **_example_initial(versions[chosen])} if chosen in versions else {}
        form = _create_form(request, pairs=pairs, initial=initial)
    elif request.method == "POST":
        form = _create_form(request, pairs=pairs)
        if form.is_valid():
            version = form.selected_version()
            try:
                current = selectors.is_current_generation(version)
                job = execution_admit(
                    service_version=version,
                    owner=request.user,
                    data=form.cleaned_data["data"] if not current else (form.cleaned_data["data"] or {}),
                    params=form.cleaned_data["params"],
                    data_ref=form.data_ref(),
                    params_ref=form.params_ref(),
                    source=JobSource.UI,
                    save_result_to_pool=form.cleaned_data["save_result"],
                    result_pool=form.result_pool_object() if form.cleaned_data["save_result"] else None,
                )
            except ApplicationError as exc:
                if current and exc.extra.get("errors"):
                    # Paths of the current generation start at the request's top level, which
                    # this form shows as its data input.
                    exc.extra["errors"] = [{**e, "path": f"data.{e.get('path', '')}"} for e in exc.extra["errors"]]
                _admission_error(form, exc)
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
        if not again and chosen in versions:
            initial.update(service=chosen, **_example_initial(versions[chosen]))
        form = _create_form(request, pairs=pairs, initial=initial)
    return render(request, "jobs/create.html", {"form": form, "has_services": bool(pairs)})


@login_required
@require_GET
def job_example(request: HttpRequest) -> HttpResponse:
    """htmx: the input sections for the chosen service (its form fields, prefilled with its
    example), swapped in out of band; 204 for an unknown service."""
    pairs = selectors.services_with_callable_version(user=request.user)
    chosen = request.GET.get("service", "")
    versions = {str(s.pk): v for s, v in pairs}
    if chosen not in versions:
        return HttpResponse(status=204)
    form = _create_form(request, pairs=pairs, initial={"service": chosen, **_example_initial(versions[chosen])})
    return render(request, "jobs/create.html#inputs", {"form": form, "oob": True})


def _job_or_404(request: HttpRequest, job_id: Any) -> Job:
    return selectors.job_get(user=request.user, job_id=job_id)


def _status_context(job: Job, user: Any = None) -> dict[str, Any]:
    interim = list(selectors.job_interim_results(job=job).order_by("-seq")[:INTERIM_CHARTED])
    interim.reverse()
    shown = interim[-INTERIM_SHOWN:]
    return {
        "job": job,
        "interim_results": [{"seq": item.seq, "json": json.dumps(item.payload, ensure_ascii=False)} for item in shown],
        "interim_total": interim[-1].seq if interim else 0,
        "interim_chart": result_views.interim_chart(
            [((item.created_at - interim[0].created_at).total_seconds(), item.payload) for item in interim]
        )
        if len(interim) > 1
        else None,
        **_result_preview(job),
        **_result_view(job),
        **_result_files(job, user),
        "metadata_json": json.dumps(job.result_metadata, indent=2, ensure_ascii=False)
        if job.result_metadata is not None
        else "",
    }


def _result_files(job: Job, user: Any) -> dict[str, Any]:
    """The files the program wrote (current generation), and the pools they can be saved into."""
    files = list(job.result_files.order_by("name")) if job.is_final else []
    pools = list(datapool_list_writable(user=user).order_by("name")) if files and user is not None else []
    return {"result_files": files, "result_file_pools": pools}


def _result_view(job: Job) -> dict[str, Any]:
    """How the result is drawn (histogram, table, line or a JSON tree), as its spec may say."""
    if job.status != "SUCCEEDED" or job.result is None:
        return {}
    hint = result_views.view_hint(_spec_of(job.service_version))
    view = result_views.choose_view(job.result, hint=hint)
    return {"result_view": view, "result_tree": result_views.json_tree(job.result) if view.kind == "json" else []}


def _spec_of(version: Any) -> Any:
    import yaml

    text = getattr(version, "api_spec", "") or ""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None


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
        **_status_context(job, request.user),
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
    response = render(request, "jobs/detail.html#status", _status_context(job, request.user))
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


def _result_file_or_404(request: HttpRequest, job_id: Any, file_id: int) -> JobResultFile:
    """A result file of a job the user may see (the job page's rule); anything else is the same 404."""
    job = _job_or_404(request, job_id)
    result_file = job.result_files.filter(pk=file_id).first()
    if result_file is None:
        raise Http404("This job has no such result file.")
    return result_file


def result_file_response(result_file: JobResultFile) -> HttpResponse:
    """A stored result file as an attachment with its media type, for the job page and the gateway.

    Never rendered by a browser in the portal's origin, whatever the program wrote (an HTML file
    too): an attachment, ``nosniff`` and a sandboxing CSP.
    """
    try:
        handle = result_file.file.open("rb")
    except FileNotFoundError:
        logger.error("result file %s of job %s is missing from storage", result_file.pk, result_file.job_id)
        raise ApplicationError(
            "This execution has no result file of that name.", code="execution:result-file-not-found", status=404
        ) from None
    response = FileResponse(
        handle, as_attachment=True, filename=result_file.name, content_type=result_file.media_type or None
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@login_required
@require_GET
def job_result_file_download(request: HttpRequest, job_id: Any, file_id: int) -> HttpResponse:
    """One result file of the job, downloaded."""
    result_file = _result_file_or_404(request, job_id, file_id)
    try:
        return result_file_response(result_file)
    except ApplicationError:
        raise Http404("This job has no such result file.") from None


@login_required
@require_http_methods(["POST"])
def job_result_file_save(request: HttpRequest, job_id: Any, file_id: int) -> HttpResponse:
    """Save a result file into a data pool the user may write (or a new one), as an upload would."""
    from datapools.selectors import Access, datapool_get
    from datapools.services import datafile_upload, datapool_create

    result_file = _result_file_or_404(request, job_id, file_id)
    pool_id = request.POST.get("pool", "").strip()
    try:
        if pool_id:
            pool = datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
        else:
            label = f"{result_file.job.service.name} job {str(result_file.job_id)[:8]}"
            pool = datapool_create(user=request.user, name=label[:100])
        with result_file.file.open("rb") as handle:
            datafile = datafile_upload(
                user=request.user,
                pool=pool,
                upload=File(handle, name=result_file.name),
                name=result_file.name,
                content_type=result_file.media_type,
            )
    except FileNotFoundError:
        messages.error(request, f"“{result_file.name}” is no longer stored; nothing was saved.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Saved “{datafile.name}” into the data pool “{pool.name}”.")
    return redirect("jobs:detail", job_id=result_file.job_id)


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
