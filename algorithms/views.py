"""The algorithm and implementation pages. Thin: reads from selectors, writes through services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from planqk_portal.errors import ApplicationError
from planqk_portal.logs import HTMX_STOP_POLLING
from services import upload_handlers

from . import selectors, services
from .forms import AlgorithmFilterForm, AlgorithmForm, GitImportForm, ImplementationFileForm, ImplementationForm
from .models import FileStatus, Tag
from .rendering import render_description

T = TypeVar("T")


def _or_http(call: Callable[..., T], **kwargs: Any) -> T:
    """Selector answers as HTTP: a 404 is a 404 page, a 403 the forbidden page."""
    try:
        return call(**kwargs)
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        if exc.status == 403:
            raise PermissionDenied(exc.message) from None
        raise


@login_required
@require_GET
def algorithm_list(request: HttpRequest) -> HttpResponse:
    """The catalogue: search, filter by problem class and tag."""
    form = AlgorithmFilterForm(request.GET or None)
    values = form.cleaned_data if form.is_valid() else {}
    algorithms = selectors.algorithm_list(
        user=request.user,
        search=values.get("q", ""),
        problem_class=values.get("problem_class", ""),
        tag=values.get("tag", ""),
    )
    context = {
        "form": form,
        "algorithms": algorithms,
        "tags": Tag.objects.filter(algorithms__isnull=False).distinct(),
        "active_tag": values.get("tag", ""),
        "filtered": any(values.get(key) for key in ("q", "problem_class", "tag")),
    }
    return render(request, "algorithms/list.html", context)


def _algorithm_form_values(form: AlgorithmForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "summary": data["summary"],
        "description": data["description"],
        "problem_class": data["problem_class"],
        "tags": data["tags"],
    }


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_create(request: HttpRequest) -> HttpResponse:
    """Propose an algorithm."""
    form = AlgorithmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            algorithm = services.algorithm_create(author=request.user, **_algorithm_form_values(form))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{algorithm.name} is in the catalogue. Add an implementation next.")
            return redirect("algorithms:detail", algorithm_id=algorithm.pk)
    return render(request, "algorithms/algorithm_form.html", {"form": form, "algorithm": None})


@login_required
@require_http_methods(["GET", "POST"])
def algorithm_edit(request: HttpRequest, algorithm_id: Any) -> HttpResponse:
    """Edit an algorithm (its author only)."""
    algorithm = _or_http(selectors.algorithm_get, algorithm_id=algorithm_id)
    if algorithm.author_id != request.user.pk:
        raise PermissionDenied("Only the algorithm's author can edit it.")
    initial = {
        "name": algorithm.name,
        "summary": algorithm.summary,
        "description": algorithm.description,
        "problem_class": algorithm.problem_class,
        "tags": ", ".join(tag.name for tag in algorithm.tags.all()),
    }
    form = AlgorithmForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.algorithm_update(algorithm=algorithm, user=request.user, **_algorithm_form_values(form))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Saved.")
            return redirect("algorithms:detail", algorithm_id=algorithm.pk)
    return render(request, "algorithms/algorithm_form.html", {"form": form, "algorithm": algorithm})


@login_required
@require_GET
def algorithm_detail(request: HttpRequest, algorithm_id: Any) -> HttpResponse:
    """An algorithm: its description (Markdown and formulas) and the implementations the user may see."""
    algorithm = _or_http(selectors.algorithm_get, algorithm_id=algorithm_id)
    implementations = list(selectors.implementation_list_visible(user=request.user, algorithm=algorithm))
    latest = selectors.implementation_files_latest_runnable(implementations=implementations)
    rows = [{"implementation": i, "file": latest.get(i.pk)} for i in implementations]
    latest_files = list(latest.values())
    made = selectors.services_from_files(user=request.user, files=latest_files)
    for row in rows:
        row["service"] = made.get(row["file"].pk) if row["file"] else None
    context = {
        "algorithm": algorithm,
        "description": render_description(algorithm.description),
        "rows": rows,
        "is_author": algorithm.author_id == request.user.pk,
    }
    return render(request, "algorithms/detail.html", context)


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def implementation_create(request: HttpRequest, algorithm_id: Any) -> HttpResponse:
    """Add an implementation of an algorithm; its first file can be uploaded right away."""
    handler = upload_handlers.install(request) if request.method == "POST" else None
    return _implementation_create(request, algorithm_id, handler)


@csrf_protect
def _implementation_create(request: HttpRequest, algorithm_id: Any, handler: Any) -> HttpResponse:
    algorithm = _or_http(selectors.algorithm_get, algorithm_id=algorithm_id)
    form = ImplementationForm(request.POST or None)
    file_form = ImplementationFileForm(request.POST or None, request.FILES or None)
    if handler is not None and handler.refused:
        form.is_valid()
        form.add_error(None, upload_handlers.too_large_error().message)
    elif request.method == "POST" and form.is_valid():
        try:
            implementation = services.implementation_create(
                algorithm=algorithm, owner=request.user, **form.cleaned_data
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            upload = request.FILES.get("file")
            if upload is not None:
                try:
                    services.implementation_file_add(implementation=implementation, user=request.user, archive=upload)
                except ApplicationError as exc:
                    messages.error(request, f"The implementation was created, but its file was refused: {exc.message}")
            messages.success(request, f"Implementation {implementation.name} created.")
            return redirect("algorithms:implementation", implementation_id=implementation.pk)
    return render(
        request,
        "algorithms/implementation_form.html",
        {"form": form, "file_form": file_form, "algorithm": algorithm, "implementation": None},
    )


def _files_context(request: HttpRequest, implementation: Any) -> dict[str, Any]:
    files = list(selectors.implementation_files(implementation=implementation))
    made = selectors.services_from_files(user=request.user, files=files)
    return {
        "implementation": implementation,
        "files": [{"file": f, "service": made.get(f.pk)} for f in files],
        "pending": any(f.status in (FileStatus.PENDING, FileStatus.FETCHING) for f in files),
        "is_owner": implementation.owner_id == request.user.pk,
    }


@login_required
@require_GET
def implementation_detail(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    """An implementation: properties, files (versions) with Create Service, usage, and the owner's tools."""
    implementation = _or_http(
        selectors.implementation_get_visible, user=request.user, implementation_id=implementation_id
    )
    context = {
        **_files_context(request, implementation),
        "description": render_description(implementation.description),
        "usage": selectors.implementation_usage(implementation=implementation),
        "shared_with": [share.user.email for share in implementation.shares.select_related("user")],
        "file_form": ImplementationFileForm(),
        "git_form": GitImportForm(initial={"url": implementation.git_url}),
    }
    return render(request, "algorithms/implementation_detail.html", context)


@login_required
@require_GET
def implementation_files_table(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    """htmx poll of the files table while a git import runs; 286 once none is pending."""
    implementation = _or_http(
        selectors.implementation_get_visible, user=request.user, implementation_id=implementation_id
    )
    context = _files_context(request, implementation)
    response = render(request, "algorithms/includes/files_table.html", context)
    if not context["pending"]:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_http_methods(["GET", "POST"])
def implementation_edit(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    implementation = _or_http(
        selectors.implementation_get_owned, user=request.user, implementation_id=implementation_id
    )
    initial = {
        "name": implementation.name,
        "description": implementation.description,
        "sdk": implementation.sdk,
        "backend": implementation.backend,
        "license": implementation.license,
        "visibility": implementation.visibility,
        "shared_with": ", ".join(share.user.email for share in implementation.shares.select_related("user")),
    }
    form = ImplementationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.implementation_update(implementation=implementation, user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Saved.")
            return redirect("algorithms:implementation", implementation_id=implementation.pk)
    return render(
        request,
        "algorithms/implementation_form.html",
        {"form": form, "file_form": None, "algorithm": implementation.algorithm, "implementation": implementation},
    )


@login_required
@require_POST
def implementation_delete(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    implementation = _or_http(
        selectors.implementation_get_owned, user=request.user, implementation_id=implementation_id
    )
    algorithm_id = implementation.algorithm_id
    services.implementation_delete(implementation=implementation, user=request.user)
    messages.success(request, "Implementation deleted.")
    return redirect("algorithms:detail", algorithm_id=algorithm_id)


@csrf_exempt
@login_required
@require_POST
def implementation_file_upload(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    """A new file (version) from an uploaded archive, checked like a service upload."""
    # The size-limited upload handler must be in place before the CSRF check reads the body.
    return _implementation_file_upload(request, implementation_id, upload_handlers.install(request))


@csrf_protect
def _implementation_file_upload(request: HttpRequest, implementation_id: Any, handler: Any) -> HttpResponse:
    implementation = _or_http(
        selectors.implementation_get_owned, user=request.user, implementation_id=implementation_id
    )
    form = ImplementationFileForm(request.POST, request.FILES)
    if handler.refused:
        messages.error(request, upload_handlers.too_large_error().message)
    elif form.is_valid():
        try:
            row = services.implementation_file_add(
                implementation=implementation, user=request.user, archive=form.cleaned_data["file"]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Version {row.version} added.")
    else:
        messages.error(request, " ".join(form.errors.get("file", ["Choose a zip file."])))
    return redirect("algorithms:implementation", implementation_id=implementation.pk)


@login_required
@require_POST
def implementation_git_import(request: HttpRequest, implementation_id: Any) -> HttpResponse:
    """A new file fetched from a git repository by a worker."""
    implementation = _or_http(
        selectors.implementation_get_owned, user=request.user, implementation_id=implementation_id
    )
    form = GitImportForm(request.POST)
    if form.is_valid():
        try:
            row = services.implementation_git_import(
                implementation=implementation,
                user=request.user,
                url=form.cleaned_data["url"],
                ref=form.cleaned_data["ref"],
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Version {row.version} is being fetched from the repository.")
    else:
        messages.error(request, "Give the repository's URL.")
    return redirect("algorithms:implementation", implementation_id=implementation.pk)


@login_required
@require_POST
def file_create_service(request: HttpRequest, file_id: Any) -> HttpResponse:
    """Create Service next to a file: a service of the user's own, built; then Create Job with it."""
    file = _or_http(selectors.implementation_file_get_visible, user=request.user, file_id=file_id)
    try:
        service, created = services.service_from_implementation_file(file=file, user=request.user)
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        back = request.POST.get("next") or ""
        if back.startswith("/") and not back.startswith("//"):
            return redirect(back)
        return redirect("algorithms:implementation", implementation_id=file.implementation_id)
    if created:
        messages.success(request, f"Service {service.name} created from version {file.version}; it is being built.")
    return redirect("algorithms:service-build", service_id=service.pk)


@login_required
@require_GET
def service_build(request: HttpRequest, service_id: Any) -> HttpResponse:
    """The build of a service made from an implementation; Create Job with it as soon as it is READY."""
    from services import selectors as service_selectors
    from services.views import log_context

    service = service_selectors.service_get_owned(user=request.user, service_id=service_id)
    if service is None:
        raise Http404("No such service.")
    version = service_selectors.service_version_latest(service=service)
    callable_version = service_selectors.service_version_latest_callable(service=service)
    if callable_version is not None:
        return redirect(f"{reverse('jobs:create')}?{urlencode({'service': str(service.pk)})}")
    context = {
        "service": service,
        "version": version,
        "origin": getattr(service, "origin", None),
        **log_context(version),
    }
    return render(request, "algorithms/service_build.html", context)


def chosen_service_spec(*, user: Any, service_id: str) -> dict[str, Any]:
    """The API spec summary of a service ``user`` may run (what Create Job shows at its bottom)."""
    from jobs.admission import runnable_services
    from services.rendering import summarize_api_spec
    from services.selectors import service_version_latest_callable

    service = runnable_services(user=user).filter(pk=selectors._uuid(service_id)).first() if service_id else None
    version = service_version_latest_callable(service=service) if service is not None else None
    if version is None:
        return {"service": None, "spec": None}
    return {"service": service, "version": version, "spec": summarize_api_spec(version.api_spec)}


@login_required
@require_GET
def job_api_spec(request: HttpRequest) -> HttpResponse:
    """htmx: the API spec block of Create Job for the service now selected."""
    context = chosen_service_spec(user=request.user, service_id=request.GET.get("service", ""))
    return render(request, "algorithms/includes/job_api_spec.html", context)
