"""planqk_service_api on its own: the contract's values and every check of hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

import planqk_service_api as contract
from planqk_service_api import ServiceAPIError, codes

REF = {"dataPoolId": "a", "dataSourceDescriptorId": "b", "fileId": "c"}


def test_statuses_and_final_states():
    assert contract.STATUSES == ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")
    assert sorted(contract.FINAL_STATES) == ["CANCELLED", "FAILED", "SUCCEEDED", "UNKNOWN"]


def test_timestamps_are_utc_in_the_contracts_format():
    moment = datetime(2024, 5, 17, 14, 3, 9, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert contract.timestamp(moment) == "2024-05-17 12:03:09"
    assert contract.timestamp(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert contract.timestamp(None) is None


def test_job_object():
    created = datetime(2024, 1, 1, tzinfo=UTC)
    job = contract.job_object(id=42, status="PENDING", created_at=created, started_at=None, ended_at=None)
    assert job == {
        "id": "42",
        "status": "PENDING",
        "createdAt": "2024-01-01 00:00:00",
        "startedAt": None,
        "endedAt": None,
    }


def test_error_body_and_the_409():
    error = ServiceAPIError("x:y", "why", 418, extra={"code": "ignored", "more": 1})
    assert error.body() == {"more": 1, "code": "x:y", "detail": "why"}
    conflict = contract.not_finished("RUNNING")
    assert (conflict.status, conflict.code) == (409, codes.EXECUTION_NOT_FINISHED)
    assert conflict.extra == {"status": "RUNNING"}


def test_the_codes_are_the_gateways_spelling():
    assert codes.METHOD_NOT_ALLOWED == "method-not-allowed"
    assert codes.INPUT_LENGTH_REQUIRED == "input:length-required"
    assert codes.INPUT_BOTH_VALUE_AND_REF == "input:both-value-and-ref"
    assert codes.NOT_FOUND == "not_found"


def test_body_size_rule():
    assert contract.body_max_bytes(1024 * 1024) == 2 * 1024 * 1024 + 64 * 1024
    assert contract.body_max_bytes(10) == 10 * 2 + 65536
    contract.check_body_size(contract.body_max_bytes(10), input_max_bytes=10)
    with pytest.raises(ServiceAPIError) as raised:
        contract.check_body_size(contract.body_max_bytes(10) + 1, input_max_bytes=10)
    assert (raised.value.status, raised.value.code) == (413, codes.INPUT_TOO_LARGE)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", codes.INPUT_MALFORMED_JSON),
        (b"[1, 2]", codes.INPUT_NOT_AN_OBJECT),
        (b'"text"', codes.INPUT_NOT_AN_OBJECT),
        (b"null", codes.INPUT_NOT_AN_OBJECT),
        (b"1e999", codes.INPUT_NOT_AN_OBJECT),
        (b'{"data": {"x": NaN}}', codes.INPUT_MALFORMED_JSON),
        (b'{"data": {"x": -Infinity}}', codes.INPUT_MALFORMED_JSON),
        (b'{"data": {"x": "\xff"}}', codes.INPUT_MALFORMED_JSON),
        (b'{"data": {"x": "\xed\xa0\x80"}}', codes.INPUT_MALFORMED_JSON),  # a surrogate encoded as UTF-8
        ("\ufeff{}".encode(), codes.INPUT_MALFORMED_JSON),  # a byte order mark
        (b'{"n": ' + b"1" * 5000 + b"}", codes.INPUT_MALFORMED_JSON),  # beyond Python's int digit limit
        (b"[" * 100_000 + b"]" * 100_000, codes.INPUT_TOO_DEEP),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, codes.INPUT_TOO_DEEP),
    ],
)
def test_parse_body_refuses(raw, code):
    with pytest.raises(ServiceAPIError) as raised:
        contract.parse_body(raw)
    assert raised.value.code == code
    assert raised.value.status == 400


def test_parse_body_accepts():
    assert contract.parse_body(b"") == {}
    assert contract.parse_body(b" \r\n ") == {}
    assert contract.parse_body(b'{"data": [1], "data": {"values": [1]}}') == {"data": {"values": [1]}}  # last wins
    assert contract.parse_body('{"data": {"t": "ü ✓ \\ud83d\\ude00"}}'.encode()) == {"data": {"t": "ü ✓ 😀"}}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"a": "x\x00y"}, codes.INPUT_INVALID_CHARACTERS),
        ({"x\x00": 1}, codes.INPUT_INVALID_CHARACTERS),
        ({"a": ["\ud800"]}, codes.INPUT_INVALID_CHARACTERS),
        ({"\udfff": 1}, codes.INPUT_INVALID_CHARACTERS),
        ({"a": float("inf")}, codes.INPUT_NOT_JSON),
        ({"a": [float("nan")]}, codes.INPUT_NOT_JSON),
        ({"a": [[[[1]]]]}, codes.INPUT_TOO_DEEP),
    ],
)
def test_json_problem(value, code):
    problem = contract.json_problem(value, max_depth=4)
    assert problem is not None
    assert problem[0] == code


def test_json_problem_accepts_what_can_be_stored_and_never_recurses():
    assert contract.json_problem({"a": [1, 2.5, True, None, "ok 😀", {"b": []}]}) is None
    assert contract.json_problem({"a": [[[1]]]}, max_depth=4) is None
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    assert contract.json_problem(deep)[0] == codes.INPUT_TOO_DEEP


def _refused(document, max_bytes=1000):
    with pytest.raises(ServiceAPIError) as raised:
        contract.execution_input(document, max_bytes=max_bytes)
    return raised.value.status, raised.value.code


def test_execution_input():
    assert contract.execution_input({}) == {"data": None, "params": None, "data_ref": None, "params_ref": None}
    assert contract.execution_input({"data": None, "paramsRef": REF, "x": 1}) == {
        "data": None,
        "data_ref": None,
        "params": None,
        "params_ref": REF,
    }
    got = contract.execution_input({"data": {"values": [1, 2]}, "params": {"mode": "x"}})
    assert got == {"data": {"values": [1, 2]}, "data_ref": None, "params": {"mode": "x"}, "params_ref": None}
    assert _refused({"data": {}, "dataRef": REF}) == (400, codes.INPUT_BOTH_VALUE_AND_REF)
    assert _refused({"params": {}, "paramsRef": "file"}) == (400, codes.INPUT_BOTH_VALUE_AND_REF)
    for bad in ([1, 2], "x", 0, False):
        assert _refused({"data": bad}) == (400, codes.INPUT_NOT_AN_OBJECT)
        assert _refused({"params": bad}) == (400, codes.INPUT_NOT_AN_OBJECT)
    assert _refused({"data": {"x": "\x00"}}) == (400, codes.INPUT_INVALID_CHARACTERS)
    assert _refused({"data": {"x": json.loads("1e999")}}) == (400, codes.INPUT_NOT_JSON)
    assert _refused({"data": {"blob": "x" * 1000}}) == (413, codes.INPUT_TOO_LARGE)
    # The size is of UTF-8 bytes, not characters.
    assert _refused({"data": {"blob": "ü" * 600}}) == (413, codes.INPUT_TOO_LARGE)
    for ref in ("file", {"dataPoolId": "a"}, {**REF, "fileId": 3}, [REF]):
        assert _refused({"dataRef": ref}) == (400, codes.DATAPOOL_BAD_REFERENCE)
    assert _refused({"dataRef": {**REF, "fileId": "\x00"}}) == (400, codes.INPUT_INVALID_CHARACTERS)
