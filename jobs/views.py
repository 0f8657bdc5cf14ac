"""Placeholder page until the jobs capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Jobs", "hint": "Run a service as a job."})
