"""planqk.json's "generation" key: planqk up zips it along and keeps it when it records the service."""

from __future__ import annotations

import json
import zipfile

from planqk_cli.project import read_project, write_project, zip_template
from planqk_template import write_template


def test_the_generation_key_travels_in_the_zip_and_survives_writing_the_service(tmp_path):
    folder = tmp_path / "svc"
    write_template(folder, name="svc", current=True)
    (folder / "planqk.json").write_text('{"generation": "current"}')
    assert read_project(folder) is None  # no service yet: the first planqk up creates one

    names = zip_template(folder, tmp_path / "user_code.zip")
    assert "planqk.json" in names
    with zipfile.ZipFile(tmp_path / "user_code.zip") as archive:
        assert json.loads(archive.read("planqk.json")) == {"generation": "current"}
        assert "src/program.py" in archive.namelist()

    write_project(folder, service_id="abc", name="svc")
    recorded = json.loads((folder / "planqk.json").read_text())
    assert recorded == {"generation": "current", "serviceId": "abc", "name": "svc"}
    assert read_project(folder)["serviceId"] == "abc"
