"""planqk_service_api.current on its own: the current API's shapes, as its SDKs parse them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from planqk_service_api import ServiceAPIError, codes, current

MOMENT = datetime(2024, 5, 17, 12, 3, 9, 250_000, tzinfo=UTC)


def test_split_request_separates_the_platforms_keys():
    data, secrets, tags = current.split_request(
        {"values": [1], "$secrets": {"a": "b"}, "$tags": ["x"], "$grants": [1], "shots": 5}
    )
    assert data == {"values": [1], "shots": 5}
    assert secrets == {"a": "b"}
    assert tags == ["x"]
    assert current.split_request({}) == ({}, None, None)


def test_execution_object_is_the_job_object_plus_the_hubs_fields():
    execution = current.execution_object(
        id="e1",
        status="RUNNING",
        created_at=MOMENT,
        started_at=MOMENT.astimezone(timezone(timedelta(hours=2))),
        ended_at=None,
        service_id="s",
        service_definition_id="v",
        application_id="a",
        tags=("t",),
    )
    assert execution == {
        "id": "e1",
        "status": "RUNNING",
        "createdAt": "2024-05-17 12:03:09",
        "startedAt": "2024-05-17 12:03:09",
        "endedAt": None,
        "type": "MANAGED",
        "serviceId": "s",
        "serviceDefinitionId": "v",
        "applicationId": "a",
        "tags": ["t"],
    }


@pytest.mark.parametrize(
    ("result", "fields"),
    [
        ({"sum": 1, "_links": 2, "_embedded": 3}, {"sum": 1}),
        (None, {}),
        (0, {"value": 0}),
        (False, {"value": False}),
        ("s", {"value": "s"}),
        ([1, {"a": 2}], {"value": [1, {"a": 2}]}),
    ],
)
def test_result_fields(result, fields):
    assert current.result_fields(result) == fields


def test_hal_result_links_self_status_and_every_file_encoded():
    execution = {"id": "e/1"}
    body = current.hal_result(
        execution=execution,
        base_url="http://h/gateway/c/s/1.0.0/",
        fields={"sum": 3},
        files=["a.txt", "with space&?.json", "self"],
    )
    own = "http://h/gateway/c/s/1.0.0/e%2F1"
    assert body == {
        "sum": 3,
        "_links": {
            "self": {"href": f"{own}/result"},
            "status": {"href": own},
            "a.txt": {"href": f"{own}/result/a.txt"},
            "with space&?.json": {"href": f"{own}/result/with%20space%26%3F.json"},
        },
        "_embedded": {"status": execution},
    }


def test_failure_fields_use_the_contracts_error_shape():
    assert current.failure_fields(status="FAILED", code="x:y", detail="why") == {"code": "x:y", "detail": "why"}
    assert current.failure_fields(status="CANCELLED", code="", detail="") == {
        "code": "CANCELLED",
        "detail": "The execution was cancelled.",
    }


@pytest.mark.parametrize(
    ("line", "severity"),
    [
        ("plain output", "INFO"),
        ("ERROR:root:it broke", "ERROR"),
        ("WARNING:qiskit:deprecated", "WARNING"),
        ("2024-05-17 12:03:09.123 | DEBUG    | src.program:run:12 - hi", "DEBUG"),
        ("2024-05-17 12:03:09.123 | SUCCESS  | done", "INFO"),
        ("[CRITICAL] disk", "ERROR"),
        ("Information only", "INFO"),
        ("Errors: none", "INFO"),
        ("  WARN something", "WARNING"),
    ],
)
def test_severity(line, severity):
    assert current.severity(line) == severity


def test_log_entries_join_lines_across_chunks_and_stamp_them():
    later = MOMENT + timedelta(seconds=1)
    entries = current.log_entries([("one\r\ntw", MOMENT), ("o\nthree", later)])
    assert entries == [
        {"message": "one", "severity": "INFO", "timestamp": "2024-05-17T12:03:09.250Z"},
        {"message": "two", "severity": "INFO", "timestamp": "2024-05-17T12:03:10.250Z"},
        {"message": "three", "severity": "INFO", "timestamp": "2024-05-17T12:03:10.250Z"},
    ]
    assert current.log_entries([]) == []
    assert current.log_entries([("", MOMENT)]) == []


def test_pages():
    assert current.page_request(None, None) == (0, current.DEFAULT_PAGE_SIZE)
    assert current.page_request("2", "10") == (2, 10)
    for page, size in (("-1", None), ("x", None), (None, "0"), (None, "201"), ("1e3", None), (None, " ")):
        with pytest.raises(ServiceAPIError) as raised:
            current.page_request(page, size)
        assert (raised.value.status, raised.value.code) == (400, codes.INPUT_BAD_PAGE)
    assert current.page_headers(base_url="http://h/s", page=0, size=2, total=2) == {"X-Total-Count": "2"}
    middle = current.page_headers(base_url="http://h/s/", page=1, size=2, total=5)
    assert middle["Link"] == '<http://h/s/?page=2&size=2>; rel="next", <http://h/s/?page=0&size=2>; rel="prev"'
    # Past the end, "prev" points at the last page there is.
    assert current.page_headers(base_url="http://h/s", page=9, size=2, total=5)["Link"] == (
        '<http://h/s/?page=2&size=2>; rel="prev"'
    )


def test_the_documented_codes_are_unchanged_beside_the_new_ones():
    assert codes.EXECUTION_NOT_FOUND == "execution:not-found"
    assert codes.RESULT_FILE_NOT_FOUND == "execution:result-file-not-found"
    assert codes.INPUT_BAD_PAGE == "input:bad-page"
