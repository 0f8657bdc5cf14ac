"""Placeholder page until the datapools capability lands."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Data Pools", "hint": "Create a data pool to upload data."})
