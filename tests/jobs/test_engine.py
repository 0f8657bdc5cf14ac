"""The execution engine in this process, on the real local runtime: outcomes, limits, the result channel."""

from __future__ import annotations

import pytest

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import InterimResult, Job, JobStatus
from jobs.services import job_cancel
from tests.conftest import make_user
from tests.jobs.conftest import SUM_DATA, SUM_PARAMS, log_text

pytestmark = pytest.mark.django_db


def run(version, owner, **kwargs) -> Job:
    job = execution_admit(service_version=version, owner=owner, **kwargs)
    engine.execute_job(str(job.id))
    return Job.objects.get(pk=job.pk)


def test_sum_job_succeeds_with_the_documented_result_and_logs(user, make_version):
    version = make_version(user, "sum")
    job = run(version, user, data=SUM_DATA, params=SUM_PARAMS)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"sum": 420.69}
    assert job.error_code == ""
    assert job.started_at
    assert job.ended_at
    assert job.duration_seconds >= 0
    assert job.runtime == "local"
    assert job.runtime_starts == 1
    logs = log_text(job)
    assert "summing 5 values" in logs
    # The runner's final line stays in the logs for people; the result came on its own channel.
    assert 'Job:ResultResponse: {"result": {"sum": 420.69}' in logs


def test_round_off_floors_the_sum(user, make_version):
    job = run(make_version(user, "sum"), user, data=SUM_DATA, params={"round_off": True})
    assert job.result == {"sum": 420}


def test_failing_service_fails_with_its_code_and_detail(user, make_version):
    job = run(make_version(user, "failing"), user)
    assert job.status == JobStatus.FAILED
    assert job.error_code == "SAMPLE_FAILURE"
    assert "always fails" in job.error_detail
    assert not job.is_platform_error
    assert "fails on purpose" in log_text(job)


def test_a_claimed_job_is_never_run_twice(user, make_version):
    job = run(make_version(user, "sum"), user, data=SUM_DATA)
    assert engine.execute_job(str(job.id)) == "not claimed"
    job.refresh_from_db()
    assert job.runtime_starts == 1


SPOOFING = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    print('Job:ResultResponse: {"result": {"sum": -1}, "metadata": null}', flush=True)
    print("PlanQK:Job:InterimResult: " + '{"fake": true}', flush=True)
    if (params or {}).get("crash"):
        raise RuntimeError("after printing a fake result")
    return ResultResponse(result={"sum": 3})
"""


LATE_FORGER = """
import os, subprocess, sys
from .libs.return_objects import ResultResponse

FORGED = 'Job:ResultResponse: {"result": {"sum": -1}, "metadata": null}'
# Waits for the runner to be gone, then prints the forged line again and again.
FORGE = f'''
import sys, time
pid = int(sys.argv[1])
def gone():
    try:
        with open(f"/proc/{{pid}}/stat") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"
give_up = time.monotonic() + 10
while not gone() and time.monotonic() < give_up:
    pass
for _ in range(200):
    print({FORGED!r}, flush=True)
'''
# An honest helper that keeps logging for a second after run() returned.
HELPER = '''
import time
give_up = time.monotonic() + 1
while time.monotonic() < give_up:
    print("helper: still flushing", flush=True)
    time.sleep(0.005)
'''

def run(data=None, params=None):
    print(FORGED, flush=True)
    subprocess.Popen([sys.executable, "-c", FORGE, str(os.getpid())])
    subprocess.Popen([sys.executable, "-c", HELPER])
    if os.fork() == 0:  # a forked child writes the forged line to every fd once the runner is gone
        runner = os.getppid()
        while os.getppid() == runner:
            pass
        for fd in range(1024):
            try:
                os.write(fd, (FORGED + "\\n").encode())
            except OSError:
                pass
        os._exit(0)
    return ResultResponse(result={"sum": 3})
"""


def test_output_after_the_runner_finished_is_only_a_log(user, make_version):
    version = make_version(user, "sum", program=LATE_FORGER)
    for _attempt in range(3):
        job = run(version, user)
        assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail)
        assert job.result == {"sum": 3}
        logs = log_text(job)
        assert '{"sum": -1}' in logs  # the forged line is there, as a log line
        assert 'Job:ResultResponse: {"result": {"sum": 3}' in logs


def test_a_result_line_printed_by_user_code_is_not_taken_as_the_result(user, make_version):
    version = make_version(user, "sum", program=SPOOFING)
    job = run(version, user)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"sum": 3}
    # The fake line stays visible as what it is: log output.
    assert '{"sum": -1}' in log_text(job)

    crashed = run(version, user, params={"crash": True})
    assert crashed.status == JobStatus.FAILED
    assert crashed.result is None
    assert crashed.error_code == "EXECUTION_ERROR"
    assert "after printing a fake result" in crashed.error_detail


def test_interim_results_are_stored_in_order(user, make_version):
    job = run(make_version(user, "slow"), user, params={"steps": 3, "sleep": 0.05})
    assert job.status == JobStatus.SUCCEEDED
    assert list(InterimResult.objects.filter(job=job).values_list("payload", flat=True)) == [
        {"step": 1, "steps": 3, "progress": 0.3333},
        {"step": 2, "steps": 3, "progress": 0.6667},
        {"step": 3, "steps": 3, "progress": 1.0},
    ]
    assert "step 3 of 3 done" in log_text(job)


def test_timeout_stops_the_execution_and_says_so(user, make_version):
    version = make_version(user, "slow", timeout_seconds=2)
    job = run(version, user, params={"steps": 60, "sleep": 1})
    assert job.status == JobStatus.FAILED
    assert job.error_code == "job:timeout"
    assert "2 seconds" in job.error_detail
    assert "step 60" not in log_text(job)


CHATTY = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    for i in range(2000):
        print(f"line {i:05d} " + "x" * 40)
    return ResultResponse(result={"printed": 2000})
"""


def test_log_is_capped_and_says_where_it_was_cut(user, make_version, settings):
    settings.PLANQK_JOB_LOG_MAX_BYTES = 4000
    job = run(make_version(user, "sum", program=CHATTY), user)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"printed": 2000}
    assert job.log_truncated
    logs = log_text(job)
    assert "line 00000" in logs
    assert "line 01999" not in logs
    assert "[output cut at 4000 bytes]" in logs
    assert len(logs.encode()) < 4200


def test_cancel_while_pending_means_it_never_starts(user, make_version):
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data=SUM_DATA)
    job = job_cancel(job=job)
    assert job.status == JobStatus.CANCELLED
    assert engine.execute_job(str(job.id)) == "not claimed"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.runtime_starts == 0


def test_ibm_service_gets_the_owners_provider_token(user, make_version):
    from accounts.services import provider_token_set

    provider_token_set(user=user, provider="IBM", value="ibm-secret-token-123456")
    program = """
    import os
    from .libs.return_objects import ResultResponse

    def run(data=None, params=None):
        return ResultResponse(result={
            "ibm": os.environ.get("QISKIT_IBM_TOKEN"), "dwave": os.environ.get("DWAVE_API_TOKEN"),
        })
    """
    ibm = run(make_version(user, "sum", program=program, quantum_backend="IBM"), user)
    assert ibm.result == {"ibm": "ibm-secret-token-123456", "dwave": None}
    # Another user's job of a service without a quantum backend sees no token.
    other = make_user()
    plain = run(make_version(other, "sum", program=program), other)
    assert plain.result == {"ibm": None, "dwave": None}


def test_a_job_whose_build_is_gone_materialises_it_again_or_fails_with_a_platform_error(user, make_version):
    from jobs.runtime_factory import get_runtime

    version = make_version(user, "sum")
    get_runtime("local").remove_build(version.build_handle)
    job = run(version, user, data=SUM_DATA)
    assert job.status == JobStatus.SUCCEEDED, job.error_detail
    assert "code materialised from the version's archive" in log_text(job)

    # Without its archive the code cannot be made again.
    get_runtime("local").remove_build(version.build_handle)
    version.archive.delete()
    job = run(version, user, data=SUM_DATA)
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:build-unavailable"
    assert "reference" in job.error_detail  # the details (which folder is gone) are in the operator's log


@pytest.mark.docker
def test_sum_and_failing_jobs_on_the_docker_runtime(user, make_version, base_image):
    version = make_version(user, "sum", runtime="docker")
    job = run(version, user, data=SUM_DATA, params=SUM_PARAMS)
    assert job.status == JobStatus.SUCCEEDED, job.error_detail
    assert job.result == {"sum": 420.69}
    assert job.runtime == "docker"
    assert "summing 5 values" in log_text(job)
    failing = run(make_version(user, "failing", runtime="docker"), user)
    assert failing.status == JobStatus.FAILED
    assert failing.error_code == "SAMPLE_FAILURE"


NUL_PRINTER = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    print("a NUL \\x00 in the log")
    print("PlanQK:Job:InterimResult: " + '{"bad": "\\\\u0000"}', flush=True)
    return ResultResponse(result={"text": "NUL \\x00 in the result" if (params or {}).get("nul") else "fine"})
"""


def test_nul_characters_from_user_code_never_break_the_job(user, make_version):
    version = make_version(user, "sum", program=NUL_PRINTER)
    job = run(version, user)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"text": "fine"}
    logs = log_text(job)
    assert "a NUL \ufffd in the log" in logs
    assert "an interim result contains a NUL character" in logs
    assert not InterimResult.objects.filter(job=job).exists()

    bad = run(version, user, params={"nul": True})
    assert bad.status == JobStatus.FAILED
    assert bad.error_code == "job:result-not-storable"
    assert bad.result is None


MEMORY_HOG = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    hog = bytearray(400 * 1024 * 1024)
    hog[::4096] = b"x" * len(hog[::4096])
    return ResultResponse(result={"allocated": len(hog)})
"""


def test_the_services_memory_limit_applies(user, make_version):
    job = run(make_version(user, "sum", program=MEMORY_HOG, memory_mb=128), user)
    assert job.status == JobStatus.FAILED
    assert job.result is None
    # An OOM kill where a cgroup limits memory, a MemoryError where an rlimit does.
    assert job.error_code in ("job:out-of-memory", "EXECUTION_ERROR"), job.error_detail


def test_a_platform_failure_shows_a_reference_never_the_servers_paths(user, make_version, caplog):
    version = make_version(user, "sum")
    secret_place = "/srv/operator-only/envs/deadbeef"
    version.build_handle = {**version.build_handle, "env_key": secret_place}
    version.save()
    job = run(version, user, data=SUM_DATA)
    assert job.status == JobStatus.FAILED
    assert job.error_code.startswith("platform:")
    assert secret_place not in job.error_detail
    assert "reference" in job.error_detail
    reference = job.error_detail.rsplit("reference ", 1)[1].rstrip(".")
    shown = job.error_detail + "".join(job.log_chunks.values_list("text", flat=True))
    assert secret_place not in shown
    # The operator's log has the details under the same reference.
    logged = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
    assert logged
    assert secret_place in logged[0]
