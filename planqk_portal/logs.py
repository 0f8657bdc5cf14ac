"""Chunked logs for builds and jobs.

Output is appended as numbered chunks (one row per flush, not one per line) so that a page
can poll with the last number it has and receive only newer chunks. The stored size is
capped per parent and a visible line says when output was cut.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import models
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

HTMX_STOP_POLLING = 286  # htmx stops polling when it receives this status


class LogChunkBase(models.Model):
    """One appended piece of a log. Subclasses add the parent foreign key."""

    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ("seq",)


class ChunkedLogWriter:
    """Buffers log text and writes it as chunks of ``model`` for ``parent``.

    Flushes when the buffer passes ``flush_bytes`` or ``flush_seconds`` have gone by, so a chatty
    program costs a handful of inserts, not one per line.
    """

    def __init__(
        self,
        model: type[LogChunkBase],
        parent_field: str,
        parent: models.Model,
        *,
        max_bytes: int,
        flush_bytes: int = 16 * 1024,
        flush_seconds: float = 0.5,
    ) -> None:
        self.model = model
        self.parent_field = parent_field
        self.parent = parent
        self.max_bytes = max_bytes
        self.flush_bytes = flush_bytes
        self.flush_seconds = flush_seconds
        existing = model.objects.filter(**{parent_field: parent})
        self._seq = (existing.aggregate(m=Max("seq"))["m"] or 0) + 1
        self._stored = sum(len(t.encode()) for t in existing.values_list("text", flat=True))
        self._buffer: list[str] = []
        self._buffered = 0
        self._last_flush = time.monotonic()
        self.truncated = False

    def write(self, text: str) -> None:
        """Append text (may hold several lines); flush when due."""
        if not text or self.truncated:
            return
        self._buffer.append(text)
        self._buffered += len(text.encode())
        if self._buffered >= self.flush_bytes or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def line(self, text: str) -> None:
        """Append one line."""
        self.write(text if text.endswith("\n") else text + "\n")

    def flush(self) -> None:
        """Store the buffered text as one chunk, cut at the size cap."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        room = self.max_bytes - self._stored
        if len(text.encode()) > room:
            text = text.encode()[: max(room, 0)].decode(errors="ignore")
            text += f"\n[output cut at {self.max_bytes} bytes]\n"
            self.truncated = True
        if not text:
            return
        self.model.objects.create(**{self.parent_field: self.parent, "seq": self._seq, "text": text})
        self._seq += 1
        self._stored += len(text.encode())


def chunks_after(queryset: QuerySet, after: int) -> list[Any]:
    """The chunks with a number greater than ``after``, in order."""
    return list(queryset.filter(seq__gt=after).order_by("seq"))


def parse_after(request: HttpRequest) -> int:
    """The ``after`` query parameter, tolerant of garbage (a poll must never 500)."""
    try:
        return max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        return 0


def log_poll(request: HttpRequest, queryset: QuerySet) -> tuple[list[Any], int]:
    """The chunks after ``?after=N`` and the number of the last one the client will then have."""
    after = parse_after(request)
    chunks = chunks_after(queryset, after)
    return chunks, chunks[-1].seq if chunks else after


def log_poll_payload(request: HttpRequest, queryset: QuerySet, *, final: bool) -> dict[str, Any]:
    """The REST answer to a log poll: ``{"chunks": [{"seq", "text"}], "last": N, "final": bool}``.

    Read ``final`` before calling: chunks written before a final state are then all included.
    """
    chunks, last = log_poll(request, queryset)
    return {"chunks": [{"seq": c.seq, "text": c.text} for c in chunks], "last": last, "final": final}


def render_log_poll(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    poll_url: str,
    final: bool,
    template: str = "includes/log_chunks.html",
) -> HttpResponse:
    """Answer an htmx log poll with only the chunks after ``?after=N``.

    Once ``final`` is true the response carries status 286 so htmx stops polling.
    """
    chunks, last = log_poll(request, queryset)
    html = render_to_string(
        template,
        {"chunks": chunks, "last": last, "poll_url": poll_url, "final": final},
        request=request,
    )
    return HttpResponse(html, status=HTMX_STOP_POLLING if final else 200)
