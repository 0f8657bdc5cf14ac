"""The catalogue: proposing, searching and filtering algorithms; descriptions in Markdown with formulas."""

from __future__ import annotations

import pytest
from django.test import Client

from algorithms import services
from algorithms.rendering import render_description
from tests.algorithms.conftest import make_algorithm
from tests.conftest import api_client_for, make_user

pytestmark = pytest.mark.django_db


def test_formulas_are_marked_for_katex_and_escaped():
    html = render_description("Energy $E = a_1 * b_2 < c$ and\n\n$$\\sum_{i} x_i^2$$\n\ntext with *emphasis*")
    assert '<span class="math" data-math="inline">E = a_1 * b_2 &lt; c</span>' in html
    assert '<div class="math" data-math="display">\\sum_{i} x_i^2</div>' in html
    assert "<em>emphasis</em>" in html
    assert "<em>1" not in html  # underscores inside a formula are not Markdown


def test_descriptions_are_sanitised_like_service_descriptions():
    from services.rendering import render_markdown

    hostile = (
        '<script>alert(1)</script> [x](javascript:alert(1)) <img src="https://tracker.example/p.png" alt="t"> '
        '<a href="/x" onclick="alert(1)">a</a> $</span><script>alert(2)</script>$'
    )
    html = render_description(hostile)
    assert "<script" not in html
    assert "javascript:" not in html
    assert "tracker.example" not in html
    assert "onclick" not in html
    # Without formulas the output is exactly the service descriptions' helper's.
    plain = "# Title\n\n**bold** and a [link](https://example.org)"
    assert render_description(plain) == render_markdown(plain)


def test_dollars_in_code_stay_code():
    html = render_description("Run `echo $HOME $PATH` and\n\n```\ncost = $5 + $6\n```\n")
    assert 'class="math"' not in html


def test_propose_search_and_filter(client: Client):
    author = make_user("author@example.com")
    client.force_login(author)
    response = client.post(
        "/algorithms/new/",
        {
            "name": "Quantum phase estimation",
            "summary": "Estimate an eigenphase of a unitary.",
            "problem_class": "SIMULATION",
            "tags": "qpe, Fourier",
            "description": "Phase $\\varphi$ with $t$ qubits.",
        },
    )
    assert response.status_code == 302
    make_algorithm(
        author, name="Shor factoring", summary="Factor integers.", problem_class="CRYPTOGRAPHY", tags=["fourier"]
    )
    page = client.get("/algorithms/?q=eigenphase").content.decode()
    assert 'data-name="Quantum phase estimation"' in page
    assert 'data-name="Shor factoring"' not in page
    page = client.get("/algorithms/?problem_class=CRYPTOGRAPHY").content.decode()
    assert 'data-name="Shor factoring"' in page
    assert 'data-name="Quantum phase estimation"' not in page
    page = client.get("/algorithms/?tag=fourier").content.decode()
    assert 'data-name="Shor factoring"' in page
    assert 'data-name="Quantum phase estimation"' in page
    detail = client.get(response["Location"]).content.decode()
    assert '<span class="math" data-math="inline">\\varphi</span>' in detail
    assert "vendor/katex/katex.min.js" in detail


def test_rest_api_catalogue():
    author = make_user("author@example.com")
    api = api_client_for(author)
    created = api.post(
        "/api/v1/algorithms/",
        {"name": "VQE", "summary": "Variational eigensolver.", "problem_class": "SIMULATION", "tags": ["variational"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["tags"] == ["variational"]
    assert created.json()["author"] == "author@example.com"
    again = api.post("/api/v1/algorithms/", {"name": "vqe", "summary": "x"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "algorithm:name-taken")
    bad_tag = api.post("/api/v1/algorithms/", {"name": "X", "summary": "x", "tags": ["<b>"]}, format="json")
    assert (bad_tag.status_code, bad_tag.json()["code"]) == (400, "algorithm:bad-tag")
    listed = api.get("/api/v1/algorithms/", {"problem_class": "SIMULATION"}).json()["results"]
    assert [a["name"] for a in listed] == ["VQE"]
    assert api.get("/api/v1/algorithms/", {"tag": "nothing"}).json()["results"] == []
    assert api.get("/api/v1/algorithms/00000000-0000-0000-0000-000000000000/").status_code == 404

    implementation = api.post(
        "/api/v1/implementations/",
        {"algorithm_id": created.json()["id"], "name": "vqe-qiskit", "sdk": "QISKIT", "visibility": "SHARED",
         "shared_with": ["nobody@example.com"]},
        format="json",
    )  # fmt: skip
    assert (implementation.status_code, implementation.json()["code"]) == (400, "implementation:unknown-user")


def test_seed_demo_adds_the_catalogue_once(settings, tmp_path):
    from django.core.management import call_command

    from algorithms.models import Algorithm, ImplementationFile

    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=__import__("io").StringIO())
    call_command("seed_demo", stdout=__import__("io").StringIO())
    assert set(Algorithm.objects.values_list("name", flat=True)) >= {
        "Bell state preparation",
        "Grover search",
        "QAOA for Max-Cut",
        "Number partitioning",
    }
    assert ImplementationFile.objects.filter(implementation__visibility="PUBLIC", status="READY").count() == 4
    assert services.parse_tags("QAOA, max cut, qaoa") == ["qaoa", "max-cut"]
