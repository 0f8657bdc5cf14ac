"""`planqk openapi`: a spec whose schemas are inferred from input/data.json and input/params.json."""

from __future__ import annotations

import json

import yaml
from openapi_spec_validator import validate

from planqk_cli.errors import ExitCode
from planqk_cli.openapi import infer_schema
from planqk_service_api.schema import input_schemas_of


def _folder(cli, data, params, name="my-service"):
    folder = cli.cwd / name
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "data.json").write_text(json.dumps(data))
    (folder / "input" / "params.json").write_text(json.dumps(params))
    return folder


def test_infers_types_item_types_nested_objects_and_nulls():
    assert infer_schema({"values": [1, 2.5], "n": 3, "name": "x", "ok": True, "seed": None}) == {
        "type": "object",
        "properties": {
            "values": {"type": "array", "items": {"type": "number"}},
            "n": {"type": "integer"},
            "name": {"type": "string"},
            "ok": {"type": "boolean"},
            "seed": {"nullable": True},
        },
    }
    assert infer_schema({"qubo": [[0, 1, -1.5]]})["properties"]["qubo"] == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}},
    }
    nested = infer_schema({"graph": {"nodes": [{"id": 1}, {"id": 2, "label": "b"}]}})
    assert nested["properties"]["graph"]["properties"]["nodes"]["items"] == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "label": {"type": "string"}},
    }
    assert infer_schema([1, "a"]) == {"type": "array", "items": {}}  # mixed: any value
    assert infer_schema([]) == {"type": "array", "items": {}}


def test_openapi_writes_a_valid_spec_whose_schemas_check_input(cli):
    data = {"values": [100, 50, 0.69], "matrix": {"rows": 2, "cells": [[1, 0], [0, 1]]}}
    params = {"shots": 1024, "backend": "aer_simulator", "optimize": False}
    folder = _folder(cli, data, params)
    result = cli("openapi", cwd=folder)
    assert result.returncode == 0, str(result)
    assert "Wrote openapi-spec.yml" in result.output
    text = (folder / "openapi-spec.yml").read_text()
    spec = yaml.safe_load(text)
    validate(spec)
    assert spec["info"]["title"] == "my-service"
    schemas = spec["components"]["schemas"]
    assert schemas["InputData"]["example"] == data
    assert schemas["InputParams"]["properties"]["shots"] == {"type": "integer"}
    assert schemas["InputData"]["properties"]["matrix"]["properties"]["cells"]["items"]["items"] == {"type": "integer"}
    assert spec["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["example"] == {
        "data": data,
        "params": params,
    }
    # No placeholder text of the template, and the platform's input check uses the schemas.
    assert "Describe your service" not in text
    assert "Adapt the" not in text
    checked = input_schemas_of(text)
    assert checked.errors("data", data) == []
    assert checked.errors("params", params) == []
    assert checked.errors("params", {"shots": "many"}) == [
        {"path": "params.shots", "message": "'many' is not of type 'integer'"}
    ]


def test_openapi_refuses_to_overwrite_without_force(cli):
    folder = _folder(cli, {"values": [1]}, {})
    (folder / "openapi-spec.yml").write_text("# my own spec\n")
    refused = cli("openapi", cwd=folder)
    assert refused.returncode == ExitCode.FILE_ERROR
    assert "--force" in refused.stderr
    assert (folder / "openapi-spec.yml").read_text() == "# my own spec\n"
    forced = cli("openapi", "--force", cwd=folder)
    assert forced.returncode == 0, str(forced)
    assert yaml.safe_load((folder / "openapi-spec.yml").read_text())["components"]["schemas"]["InputData"]


def test_openapi_takes_an_example_result_from_python_m_src(cli):
    assert cli("init", "svc").returncode == 0
    folder = cli.cwd / "svc"
    (folder / "result.json").write_text(json.dumps({"result": {"sum": 420.69}, "metadata": None}))
    result = cli("openapi", "--force", "--result-file", "result.json", cwd=folder)
    assert result.returncode == 0, str(result)
    spec = yaml.safe_load((folder / "openapi-spec.yml").read_text())
    assert spec["components"]["schemas"]["ResultData"]["properties"] == {"sum": {"type": "number"}}
    assert spec["components"]["schemas"]["InputData"]["example"] == {"values": [100, 50, 200, 70, 0.69]}


def test_openapi_says_what_is_wrong_with_the_examples(cli):
    folder = cli.cwd / "empty"
    folder.mkdir()
    missing = cli("openapi", cwd=folder)
    assert missing.returncode == ExitCode.FILE_ERROR
    assert "input/data.json is missing" in missing.stderr
    bad = _folder(cli, {}, {}, name="bad")
    (bad / "input" / "data.json").write_text("[1, 2")
    assert "is not JSON" in cli("openapi", cwd=bad).stderr
    (bad / "input" / "data.json").write_text("[1, 2]")
    assert "must hold a JSON object" in cli("openapi", cwd=bad).stderr
    assert not (bad / "openapi-spec.yml").exists()


def test_the_template_spec_matches_the_template_program(cli):
    """`planqk init` ships a spec whose schemas accept its own examples and describe them."""
    assert cli("init", "t").returncode == 0
    text = (cli.cwd / "t" / "openapi-spec.yml").read_text()
    spec = yaml.safe_load(text)
    schemas = input_schemas_of(text)
    folder = cli.cwd / "t" / "input"
    assert schemas.errors("data", json.loads((folder / "data.json").read_text())) == []
    assert schemas.errors("params", json.loads((folder / "params.json").read_text())) == []
    assert schemas.errors("data", {"values": "abc"}) != []
    for phrase in ("Adapt the", "Describe your service's input here", "Describe your service's output here"):
        assert phrase not in json.dumps(spec)
