"""Placeholder page until the marketplace capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Marketplace", "hint": "Published services appear here."})
