"""Placeholder page until the applications capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "coming_soon.html", {"title": "Applications", "hint": "Create an application to call services."}
    )
