"""Placeholder page until the services capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "coming_soon.html", {"title": "My Services", "hint": "Create a service from the user code template."}
    )
