"""Placeholder page until the payments capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Payments", "hint": "Add a card to create services."})
