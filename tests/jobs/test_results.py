"""Results drawn: the view chosen for common result shapes, the provider's x-planqk-view, the pages."""

from __future__ import annotations

import pytest
import yaml

from jobs import engine, result_views
from jobs.admission import execution_admit
from jobs.result_views import choose_view, interim_chart, json_tree, view_hint

QUBO = {"qubo": {"0,0": -1, "1,1": -1, "2,2": -1, "0,1": 2, "1,2": 2}}


def test_counts_are_a_histogram_of_sorted_bitstrings_with_probabilities():
    view = choose_view({"counts": {"11": 506, "00": 518}})
    assert view.kind == "histogram"
    assert view.key == "counts"
    assert view.chart == {"labels": ["00", "11"], "counts": [518, 506], "total": 1024}
    assert view.rows[0] == {"outcome": "00", "count": 518, "probability": round(518 / 1024, 6)}
    # Registers separated by spaces and hex outcomes count too; the result itself may be the counts.
    assert choose_view({"0 1": 3, "1 0": 1}).kind == "histogram"
    assert choose_view({"0x0": 3, "0x3": 1}).kind == "histogram"


def test_samples_with_energies_are_a_table_best_first():
    view = choose_view(
        {"samples": [{"sample": {"0": 1, "1": 1}, "energy": 0.5}, {"sample": {"0": 1, "1": 0}, "energy": -1.0}]}
    )
    assert view.kind == "table"
    assert view.columns == ["energy", "x0", "x1"]
    assert [row["energy"] for row in view.rows] == [-1.0, 0.5]
    # D-Wave's one best sample (the dwave_qubo sample's result) is a one-row table.
    single = choose_view({"sample": {"0": 1, "1": 0, "2": 1}, "energy": -2.0})
    assert single.kind == "table"
    assert single.rows == [{"energy": -2.0, "x0": 1, "x1": 0, "x2": 1}]
    # Two binary variables look like counts; the energy says it is a sample.
    assert choose_view({"sample": {"0": 1, "1": 0}, "energy": -1.0}).kind == "table"


def test_a_list_of_numbers_is_a_line_and_anything_else_a_json_tree():
    assert choose_view({"energies": [3, 2.5, 1]}).kind == "line"
    assert choose_view([1, 2, 3]).chart == {"labels": [0, 1, 2], "values": [1, 2, 3]}
    assert choose_view({"sum": 420.69}).kind == "json"
    assert choose_view({"counts": {"ab": 1}}).kind == "json"  # not bitstrings
    nodes = json_tree({"a": {"b": [1, 2]}, "c": None})
    assert nodes[0] == {"type": "open", "label": "", "kind": "object", "size": 2, "open": True}
    assert {"type": "leaf", "label": "c", "value": "null"} in nodes
    assert len(json_tree(list(range(10_000)))) < result_views.MAX_TREE_NODES + 10


def test_the_provider_names_the_view_where_detection_would_guess_wrong():
    result = {"counts": {"00": 5, "11": 5}, "history": [1, 2, 3]}
    assert choose_view(result).kind == "histogram"
    assert choose_view(result, hint="line").key == "history"
    assert choose_view(result, hint="json").kind == "json"
    assert choose_view({"sum": 1}, hint="histogram").kind == "json"  # a hint the shape cannot take
    from planqk_template import template_files

    spec = yaml.safe_load(template_files()["openapi-spec.yml"])
    assert view_hint(spec) is None
    spec["components"]["schemas"]["ResultData"]["x-planqk-view"] = "table"
    assert view_hint(spec) == "table"
    assert view_hint({"components": {"schemas": {"ResultData": {"x-planqk-view": "pie"}}}}) is None


def test_interim_results_are_series_over_time():
    items = [(0.0, {"step": 1, "steps": 3, "progress": 0.33}), (1.0, {"step": 2, "steps": 3, "progress": 0.67})]
    chart = interim_chart(items)
    assert chart == {"seconds": [0.0, 1.0], "series": {"step": [1, 2], "progress": [0.33, 0.67]}}
    assert interim_chart([(0.0, "text"), (1.0, "more")]) is None


@pytest.mark.django_db
def test_the_job_page_draws_the_bell_histogram_and_the_qubo_table(client, user, make_version):
    client.force_login(user)
    bell = execution_admit(service_version=make_version(user, "qiskit_bell"), owner=user, params={"shots": 64})
    engine.execute_job(str(bell.pk))
    page = client.get(f"/jobs/{bell.pk}/").content.decode()
    assert 'data-testid="result-histogram"' in page
    assert '<script id="result-chart-data" type="application/json">' in page
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert 'data-testid="show-raw-result"' in page  # the raw JSON one click away
    assert f'href="/jobs/{bell.pk}/result.json"' in page

    qubo = execution_admit(service_version=make_version(user, "dwave_qubo"), owner=user, data=QUBO)
    engine.execute_job(str(qubo.pk))
    page = client.get(f"/jobs/{qubo.pk}/").content.decode()
    assert 'data-testid="result-table"' in page
    assert "lowest energy first" in page
    assert '<td data-value="-2.0">-2.0</td>' in page


@pytest.mark.django_db
def test_the_sum_is_a_json_tree_and_interim_results_a_chart(client, user, make_version):
    client.force_login(user)
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data={"values": [1, 2]})
    engine.execute_job(str(job.pk))
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-testid="result-tree"' in page
    assert '<span class="json-key">sum</span>: <code>3</code>' in page
    slow = execution_admit(service_version=make_version(user, "slow"), owner=user, params={"steps": 3, "sleep": 0})
    engine.execute_job(str(slow.pk))
    page = client.get(f"/jobs/{slow.pk}/").content.decode()
    assert 'data-testid="interim-chart"' in page
    assert '<script id="interim-chart-data" type="application/json">' in page
