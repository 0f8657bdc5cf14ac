"""The CLI without a portal: help, completion, init, and the errors a user meets first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import planqk_cli
from planqk_cli.errors import ExitCode
from planqk_template import TEMPLATE_PATHS

from .conftest import closed_port

COMMANDS = ["login", "logout", "init", "openapi", "up", "run", "serve", "services", "jobs", "help", "autocomplete"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith(f"usage: planqk {command}")
    # `planqk help COMMAND` shows the same text.
    assert cli("help", command).stdout == result.stdout


def test_the_console_script_is_installed(cli):
    script = Path(sys.executable).with_name("planqk")
    if not script.exists():
        pytest.skip("the project is not installed in this environment (pip install -e .)")
    completed = subprocess.run([str(script), "--version"], cwd=cli.cwd, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"planqk {planqk_cli.__version__}"


def test_help_lists_commands_and_exit_codes(cli):
    result = cli("help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout
    for code in ExitCode:
        assert f"  {int(code):<4} " in result.stdout
    # Without a command the CLI shows the same help, and the package docstring documents the codes.
    assert cli().stdout == result.stdout
    for code in ExitCode:
        assert f"    {int(code):<4} " in planqk_cli.__doc__


def test_help_for_an_unknown_command_is_a_usage_error(cli):
    result = cli("help", "deploy")
    assert result.returncode == ExitCode.USAGE
    assert "no command 'deploy'" in result.stderr


def test_unknown_option_is_a_usage_error(cli):
    result = cli("up", "--bogus")
    assert result.returncode == ExitCode.USAGE
    assert "unrecognized arguments: --bogus" in result.stderr


def test_invalid_quantum_backend_is_a_usage_error(cli):
    result = cli("up", "-q", "rigetti")
    assert result.returncode == ExitCode.USAGE
    assert "invalid choice: 'RIGETTI'" in result.stderr


# --- autocomplete ---------------------------------------------------------------------------------


def _bash_complete(script: str, words: list[str]) -> list[str]:
    """What bash offers for `words` (the last one being completed) with the script loaded."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f'{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n_planqk\nprintf "%s\\n" "${{COMPREPLY[@]}}"\n'
    )
    completed = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return completed.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_options_and_choices(cli):
    result = cli("autocomplete", "bash")
    assert result.returncode == 0
    assert 'eval "$(planqk autocomplete bash)"' in result.stdout  # the instructions, as comments
    script = result.stdout
    assert sorted(_bash_complete(script, ["planqk", "s"])) == ["serve", "services"]
    assert "--api-spec" in _bash_complete(script, ["planqk", "up", "--"])
    assert _bash_complete(script, ["planqk", "up", "-q", ""]) == ["NONE", "IBM", "DWAVE"]
    assert _bash_complete(script, ["planqk", "autocomplete", "z"]) == ["zsh"]
    assert _bash_complete(script, ["planqk", "help", "lo"]) == ["login", "logout"]


def test_autocomplete_defaults_to_the_users_shell(cli):
    assert cli("autocomplete", SHELL="/usr/bin/fish").stdout == cli("autocomplete", "fish").stdout
    assert cli("autocomplete", SHELL="/bin/tcsh").stdout == cli("autocomplete", "bash").stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse(cli, shell, tmp_path):
    result = cli("autocomplete", shell)
    assert result.returncode == 0
    assert "complete" in result.stdout
    assert result.stdout.startswith(f"# planqk completion for {shell}")
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed to check the script's syntax")
    script = tmp_path / f"planqk.{shell}"
    script.write_text(result.stdout)
    check = subprocess.run([binary, "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_unknown_shell_is_a_usage_error(cli):
    assert cli("autocomplete", "powershell").returncode == ExitCode.USAGE


# --- init -----------------------------------------------------------------------------------------


def test_init_writes_the_template_and_python_m_src_prints_the_sum(cli):
    result = cli("init")
    assert result.returncode == 0, str(result)
    folder = cli.cwd / "planqk-service"
    for path in TEMPLATE_PATHS:
        assert (folder / path).is_file(), path
    assert 'title: "planqk-service"' in (folder / "openapi-spec.yml").read_text()
    run = subprocess.run([sys.executable, "-m", "src"], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["result"] == {"sum": 420.69}


def test_init_never_overwrites_files(cli):
    folder = cli.cwd / "mine"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "program.py").write_text("# my work\n")
    result = cli("init", "mine")
    assert result.returncode == ExitCode.FILE_ERROR
    assert "src/program.py" in result.stderr
    assert (folder / "src" / "program.py").read_text() == "# my work\n"
    assert not (folder / "Dockerfile").exists()  # nothing at all was written


def test_init_into_the_current_folder(cli):
    folder = cli.cwd / "here"
    folder.mkdir()
    result = cli("init", ".", cwd=folder)
    assert result.returncode == 0, str(result)
    assert (folder / "src" / "program.py").is_file()
    assert 'title: "here"' in (folder / "openapi-spec.yml").read_text()


# --- errors before any request ---------------------------------------------------------------------


def test_not_logged_in(cli):
    for args in (["services"], ["jobs"], ["run", "sum", "-d", "{}"]):
        result = cli(*args)
        assert result.returncode == ExitCode.NOT_LOGGED_IN, str(result)
        assert "not logged in" in result.stderr
        assert "planqk login -t TOKEN" in result.stderr


def test_unreachable_portal_at_login(cli):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = cli("login", "-t", "pqk_whatever", "--endpoint", endpoint)
    assert result.returncode == ExitCode.UNREACHABLE, str(result)
    assert f"cannot reach the portal at {endpoint}" in result.stderr
    assert not cli.config_file.exists()


def test_unreachable_portal_after_login(cli):
    """A stored login whose portal went away: every portal command says so."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    cli.config_file.parent.mkdir(parents=True)
    cli.config_file.write_text(json.dumps({"endpoint": endpoint, "token": "pqk_x"}))
    for args in (["services"], ["jobs"]):
        result = cli(*args)
        assert result.returncode == ExitCode.UNREACHABLE, str(result)
        assert "connection refused" in result.stderr


def test_an_endpoint_that_is_not_a_url_is_a_usage_error(cli):
    result = cli("login", "-t", "pqk_x", "--endpoint", "portal.example.org")
    assert result.returncode == ExitCode.USAGE
    assert "not a portal address" in result.stderr


def test_token_is_only_sent_to_the_portal_it_was_stored_for(cli):
    cli.config_file.parent.mkdir(parents=True)
    cli.config_file.write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "token": "pqk_x"}))
    result = cli("services", PLANQK_ENDPOINT="http://127.0.0.1:2")
    assert result.returncode == ExitCode.NOT_LOGGED_IN
    assert "logged in to http://127.0.0.1:1, not to http://127.0.0.1:2" in result.stderr


def test_a_broken_config_file_is_a_file_error_and_logout_repairs_it(cli):
    cli.config_file.parent.mkdir(parents=True)
    cli.config_file.write_text("{not json")
    result = cli("services")
    assert result.returncode == ExitCode.FILE_ERROR
    assert "config.json is not valid JSON" in result.stderr
    assert cli("logout").returncode == 0
    assert not cli.config_file.exists()
    assert cli("services").returncode == ExitCode.NOT_LOGGED_IN


def test_logout_when_not_logged_in(cli):
    result = cli("logout")
    assert result.returncode == 0
    assert "not logged in" in result.stderr


def test_login_without_a_token_and_no_terminal_is_a_usage_error(cli):
    result = cli("login")
    assert result.returncode == ExitCode.USAGE
    assert "no token given" in result.stderr


@pytest.mark.parametrize("command", [["up", "--silent"], ["serve"]])
def test_no_template_in_the_current_folder(cli, command):
    result = cli(*command)
    assert result.returncode == ExitCode.NO_TEMPLATE, str(result)
    assert "holds no user code template (no src/program.py)" in result.stderr
    assert "planqk init" in result.stderr


def test_up_with_a_missing_or_broken_zip_is_a_file_error(cli):
    result = cli("up", "--file", "nothing.zip", "--silent")
    assert result.returncode == ExitCode.FILE_ERROR
    assert "nothing.zip does not exist" in result.stderr
    (cli.cwd / "user_code.zip").write_text("not a zip")
    result = cli("up", "--file", "user_code.zip", "--silent")
    assert result.returncode == ExitCode.FILE_ERROR
    assert "is not a zip archive" in result.stderr


def test_run_with_invalid_json_is_a_usage_error(cli):
    result = cli("run", "sum", "-d", "{values: [1]}")
    assert result.returncode == ExitCode.USAGE
    assert "-d/--data is not valid JSON" in result.stderr


def test_run_with_a_data_file_that_is_not_json_is_a_file_error(cli):
    (cli.cwd / "data.json").write_text("[1, 2")
    result = cli("run", "sum", "--data-file", "data.json")
    assert result.returncode == ExitCode.FILE_ERROR
    assert "data.json is not valid JSON" in result.stderr


def test_run_without_a_service_outside_a_service_folder(cli):
    result = cli("run")
    assert result.returncode == ExitCode.USAGE
    assert "which service?" in result.stderr


def test_zip_of_the_template_holds_only_the_service_files(cli, template):
    """What `planqk up` uploads: src, requirements.txt, environment.yml, openapi-spec.yml; no caches."""
    from planqk_cli.project import zip_template

    cache = template / "src" / "__pycache__"
    cache.mkdir()
    (cache / "program.cpython-311.pyc").write_bytes(b"\0")
    (template / "src" / "link.py").symlink_to(template / "Dockerfile")
    archive = template.parent / "out.zip"
    zip_template(template, archive)
    with zipfile.ZipFile(archive) as zipped:
        names = sorted(zipped.namelist())
    top_level = ("requirements.txt", "environment.yml", "openapi-spec.yml")
    assert names == sorted(p for p in TEMPLATE_PATHS if p.startswith("src/") or p in top_level)
    assert os.path.islink(template / "src" / "link.py")
