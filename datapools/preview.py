"""The data pool file preview: a JSON file drawn as the job page draws results (jobs.result_views)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from planqk_portal.errors import ApplicationError

PREVIEW_MAX_BYTES = 5 * 1024 * 1024
RAW_CHARS = 200_000


@login_required
@require_GET
def file_preview(request: HttpRequest, pool_id: Any, file_id: Any) -> HttpResponse:
    """A JSON file of a pool the user can read: histogram, table, line or JSON tree, and the raw text."""
    from datapools.models import DataFile
    from datapools.selectors import datafile_read_json
    from jobs import result_views

    datafile = DataFile.objects.select_related("pool", "descriptor").filter(pk=file_id, pool_id=pool_id).first()
    if datafile is None:
        raise Http404("No such file.")
    try:
        value = datafile_read_json(user=request.user, ref=datafile.reference, max_bytes=PREVIEW_MAX_BYTES)
    except ApplicationError as exc:
        return render(request, "datapools/error.html", {"error": exc}, status=exc.status)
    # A saved job result is {"result": ..., "metadata": ...}: draw the result.
    saved_result = isinstance(value, dict) and "result" in value and set(value) <= {"result", "metadata"}
    drawn = value["result"] if saved_result else value
    view = result_views.choose_view(drawn)
    raw = json.dumps(value, indent=2, ensure_ascii=False)
    context = {
        "file": datafile,
        "pool": datafile.pool,
        "result_view": view,
        "result_tree": result_views.json_tree(drawn) if view.kind == "json" else [],
        "raw_json": raw[:RAW_CHARS],
        "raw_cut": len(raw) > RAW_CHARS,
    }
    return render(request, "datapools/preview.html", context)
