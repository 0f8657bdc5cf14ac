"""Data Pools pages: thin views over :mod:`datapools.selectors` and :mod:`datapools.services`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from planqk_portal.errors import ApplicationError

from . import selectors, services
from .downloads import datafile_response
from .forms import DataPoolForm, DataSourceForm, ShareForm, UploadForm, VisibilityForm
from .models import DataPoolShare, Visibility
from .selectors import Access
from .uploads import install_upload_handler

POOLS_PER_PAGE = 20
FILES_PER_PAGE = 25
ACCESS_LABELS = {Access.OWNER: "owner", Access.WRITE: "read + write", Access.READ: "read only"}
LIST_FILTERS = {
    "": "All you can read",
    "mine": "Yours",
    "shared": "Shared with you",
    "public": "Public",
}


def _shows_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A missing or forbidden pool (an ApplicationError from a selector) renders a clear page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as exc:
            if exc.status not in (403, 404):
                raise
            return render(request, "datapools/error.html", {"error": exc}, status=exc.status)

    return wrapper


def _detail_url(pool_id: Any, **query: Any) -> str:
    url = reverse("datapools:detail", args=[pool_id])
    params = "&".join(f"{key}={value}" for key, value in query.items() if value)
    return f"{url}?{params}" if params else url


@login_required
@require_http_methods(["GET", "POST"])
def datapool_list(request: HttpRequest) -> HttpResponse:
    """Pools the user can read, filtered by ownership; creating a pool opens it."""
    form = DataPoolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pool = services.datapool_create(
                user=request.user, name=form.cleaned_data["name"], description=form.cleaned_data["description"]
            )
            messages.success(request, f"Data pool “{pool.name}” created. Upload a file to get its reference.")
            return redirect("datapools:detail", pool.pk)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    show = request.GET.get("show", "")
    if show not in LIST_FILTERS:
        show = ""
    pools = selectors.datapool_list_readable(user=request.user)
    if show == "mine":
        pools = pools.filter(owner=request.user)
    elif show == "shared":
        pools = pools.filter(Exists(DataPoolShare.objects.filter(pool=OuterRef("pk"), user=request.user)))
    elif show == "public":
        pools = pools.filter(visibility=Visibility.PUBLIC).exclude(owner=request.user)
    page_obj = Paginator(pools, POOLS_PER_PAGE).get_page(request.GET.get("page"))
    for pool in page_obj.object_list:
        pool.access_label = ACCESS_LABELS[pool.access]
    context = {
        "form": form,
        "page_obj": page_obj,
        "pools": page_obj.object_list,
        "show": show,
        "filters": LIST_FILTERS,
        "query": f"show={show}" if show else "",
        "max_upload_mb": selectors.max_upload_bytes() // (1024 * 1024),
        "waiting_invitations": selectors.datapool_invitations_waiting(user=request.user),
    }
    return render(request, "datapools/list.html", context)


def _detail_context(request: HttpRequest, pool: Any) -> dict[str, Any]:
    sources = list(selectors.datasource_list(pool=pool))
    source = None
    source_id = request.GET.get("source")
    if source_id:
        source = next((s for s in sources if str(s.pk) == source_id), None)
    files = selectors.datafile_list(pool=pool, source=source)
    page_obj = Paginator(files, FILES_PER_PAGE).get_page(request.GET.get("page"))
    can_write = pool.access >= Access.WRITE
    default = next((s for s in sources if s.is_default), None)
    chosen = source or default
    return {
        "pool": pool,
        "sources": sources,
        "source": source,
        "page_obj": page_obj,
        "files": page_obj.object_list,
        "query": f"source={source.pk}" if source else "",
        "can_write": can_write,
        "is_owner": pool.access == Access.OWNER,
        "access_label": ACCESS_LABELS[pool.access],
        "own_share": DataPoolShare.objects.filter(pool=pool, user=request.user).first(),
        "share_count": DataPoolShare.objects.filter(pool=pool).count(),
        "upload_form": UploadForm(sources=sources, initial={"source": str(chosen.pk) if chosen else ""}),
        "source_form": DataSourceForm(),
        "max_upload_mb": selectors.max_upload_bytes() // (1024 * 1024),
        "max_upload_bytes": selectors.max_upload_bytes(),
    }


@login_required
@_shows_errors
def datapool_detail(request: HttpRequest, pool_id: str) -> HttpResponse:
    """A pool's data sources and files, each file with its reference and a copy button."""
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
    context = _detail_context(request, pool)
    if request.htmx and request.htmx.target == "file-list":
        return render(request, "datapools/detail.html#files", context)
    return render(request, "datapools/detail.html", context)


@csrf_exempt
@login_required
@require_POST
def file_upload(request: HttpRequest, pool_id: str) -> HttpResponse:
    """Upload one file. The metered handler goes in before the CSRF check reads the body."""
    handler = install_upload_handler(request, max_bytes=selectors.max_upload_bytes())
    return _file_upload(request, pool_id, handler)


@csrf_protect
@_shows_errors
def _file_upload(request: HttpRequest, pool_id: str, handler: Any) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
    source_id = request.POST.get("source") or ""
    back = _detail_url(pool.pk, source=source_id)
    if handler.refused:
        name = services.clean_file_name(handler.refused_name) if handler.refused_name else "The file"
        messages.error(
            request,
            f"“{name}” is larger than the upload limit of {selectors.max_upload_bytes() // (1024 * 1024)} MB. "
            "Nothing was stored.",
        )
        return redirect(back)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to upload.")
        return redirect(back)
    try:
        source = selectors.datasource_get(pool=pool, source_id=source_id) if source_id else None
        datafile = services.datafile_upload(user=request.user, pool=pool, upload=upload, source=source)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    finally:
        upload.close()
    messages.success(request, f"Uploaded “{datafile.name}”. Copy its reference below to use it as dataRef.")
    return redirect(_detail_url(pool.pk, source=source_id) + f"#file-{datafile.pk}")


@login_required
@_shows_errors
def file_download(request: HttpRequest, pool_id: str, file_id: str) -> HttpResponse | FileResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
    datafile = selectors.datafile_get(pool=pool, file_id=file_id)
    return datafile_response(datafile)


def _confirm(request: HttpRequest, *, title: str, message: str, label: str, cancel: str) -> HttpResponse:
    context = {"title": title, "message": message, "confirm_label": label, "cancel_href": cancel}
    return render(request, "confirm.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@_shows_errors
def file_delete(request: HttpRequest, pool_id: str, file_id: str) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
    datafile = selectors.datafile_get(pool=pool, file_id=file_id)
    if request.method == "POST":
        services.datafile_delete(user=request.user, datafile=datafile)
        messages.success(request, f"File “{datafile.name}” deleted.")
        return redirect("datapools:detail", pool.pk)
    return _confirm(
        request,
        title=f"Delete file “{datafile.name}”?",
        message="Its content is removed from storage. Jobs and service calls that reference it will fail.",
        label="Delete file",
        cancel=_detail_url(pool.pk),
    )


@login_required
@require_POST
@_shows_errors
def source_create(request: HttpRequest, pool_id: str) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
    form = DataSourceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the data source a name (at most 120 characters).")
        return redirect("datapools:detail", pool.pk)
    try:
        source = services.datasource_create(user=request.user, pool=pool, name=form.cleaned_data["name"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("datapools:detail", pool.pk)
    messages.success(request, f"Data source “{source.name}” added. Upload files into it.")
    return redirect(_detail_url(pool.pk, source=source.pk))


@login_required
@require_http_methods(["GET", "POST"])
@_shows_errors
def source_delete(request: HttpRequest, pool_id: str, source_id: str) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.WRITE)
    source = selectors.datasource_get(pool=pool, source_id=source_id)
    if request.method == "POST":
        try:
            services.datasource_delete(user=request.user, source=source)
            messages.success(request, f"Data source “{source.name}” and its files deleted.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("datapools:detail", pool.pk)
    count = source.files.count()
    return _confirm(
        request,
        title=f"Delete data source “{source.name}”?",
        message=f"Its {count} file{'s' if count != 1 else ''} are deleted with it. References to them stop working.",
        label="Delete data source",
        cancel=_detail_url(pool.pk, source=source.pk),
    )


@login_required
@require_http_methods(["GET", "POST"])
@_shows_errors
def datapool_edit(request: HttpRequest, pool_id: str) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
    form = DataPoolForm(request.POST or None, initial={"name": pool.name, "description": pool.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.datapool_update(
                user=request.user,
                pool=pool,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
            messages.success(request, "Data pool saved.")
            return redirect("datapools:detail", pool.pk)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    return render(request, "datapools/edit.html", {"pool": pool, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
@_shows_errors
def datapool_delete(request: HttpRequest, pool_id: str) -> HttpResponse:
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
    if request.method == "POST":
        services.datapool_delete(user=request.user, pool=pool)
        messages.success(request, f"Data pool “{pool.name}” deleted.")
        return redirect("datapools:list")
    count = pool.files.count()
    return _confirm(
        request,
        title=f"Delete data pool “{pool.name}”?",
        message=f"All {count} file{'s' if count != 1 else ''} in it are removed from storage, and everyone it is "
        "shared with loses access. References to its files stop working.",
        label="Delete data pool",
        cancel=_detail_url(pool.pk),
    )


@login_required
@require_http_methods(["GET", "POST"])
@_shows_errors
def datapool_sharing(request: HttpRequest, pool_id: str) -> HttpResponse:
    """Visibility and named shares (owner only)."""
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id, need=Access.OWNER)
    share_form = ShareForm()
    visibility_form = VisibilityForm(initial={"visibility": pool.visibility})
    if request.method == "POST" and request.POST.get("action") == "visibility":
        visibility_form = VisibilityForm(request.POST)
        if visibility_form.is_valid():
            services.datapool_update(
                user=request.user, pool=pool, visibility=visibility_form.cleaned_data["visibility"]
            )
            pool.visibility = visibility_form.cleaned_data["visibility"]
            label = "public: every user can read it" if pool.visibility == Visibility.PUBLIC else "private"
            messages.success(request, f"“{pool.name}” is now {label}.")
            return redirect("datapools:sharing", pool.pk)
    elif request.method == "POST":
        share_form = ShareForm(request.POST)
        if share_form.is_valid():
            try:
                share = services.datapool_share(
                    user=request.user,
                    pool=pool,
                    email=share_form.cleaned_data["email"],
                    permission=share_form.cleaned_data["permission"],
                )
                messages.success(request, f"Shared with {share.address} ({share.get_permission_display().lower()}).")
                return redirect("datapools:sharing", pool.pk)
            except ApplicationError as exc:
                share_form.add_error("email", exc.message)
    shares = DataPoolShare.objects.filter(pool=pool).select_related("user").order_by(Coalesce("user__email", "email"))
    context = {"pool": pool, "shares": shares, "share_form": share_form, "visibility_form": visibility_form}
    return render(request, "datapools/sharing.html", context)


@login_required
@require_POST
@_shows_errors
def share_remove(request: HttpRequest, pool_id: str, share_id: int) -> HttpResponse:
    """The owner removes a share, or a user leaves a pool shared with them."""
    pool = selectors.datapool_get(user=request.user, pool_id=pool_id)
    share = DataPoolShare.objects.filter(pool=pool, pk=share_id).select_related("user").first()
    services.datapool_unshare(user=request.user, pool=pool, share_id=share_id)
    if share is not None and share.user_id == request.user.pk:
        messages.success(request, f"You left “{pool.name}”.")
        return redirect("datapools:list")
    messages.success(request, f"{share.address if share else 'The user'} no longer has access.")
    return redirect("datapools:sharing", pool.pk)
