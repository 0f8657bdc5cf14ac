"""``manage.py stop_warm_runners``: how a host's warm runners stop once its workers stopped
(``make run`` calls it on Ctrl-C; ``scripts/check-make-run.sh`` checks that nothing survives).

Real runners on a real local runtime: one ready, one still importing its code when the command
runs. Afterwards no process of either may be alive and the pool has nothing ready: a runner that
was still starting must not get ready after the command and idle on for ``idle_seconds``.
"""

from __future__ import annotations

import os
import time
from io import StringIO

import pytest
from django.core.management import call_command

from tests.runtimes.conftest import execution_spec, warm_runtime_under_test
from tests.runtimes.test_warm_pool import _marked

# The import takes a while, so the second runner is surely still starting when the command runs.
SLOW_IMPORT = "import time\ntime.sleep(2)\n\ndef run(data=None, params=None):\n    return {'ok': True}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="runners switch uids as root")
def test_stop_warm_runners_stops_ready_ones_and_those_still_starting(settings) -> None:
    body = warm_runtime_under_test("stop-warm")
    rt = next(body)
    try:
        build = rt.build(SLOW_IMPORT)
        data_dir = rt.config["data_dir"]
        assert rt.runtime.prewarm(execution_spec(build), wait_seconds=60) == 1
        # Another shape (other limits), started but not ready yet.
        assert rt.runtime.prewarm(execution_spec(build, memory_mb=200), wait_seconds=0) == 0
        assert len(list(rt.runtime.warm.warm_dir.iterdir())) == 2
        settings.PLANQK_DATA_DIR = data_dir
        settings.PLANQK_WARM = "on"
        settings.PLANQK_HOST_RUNTIMES = []  # this host's Docker engine is other tests' business
        out = StringIO()
        call_command("stop_warm_runners", "--wait", "60", stdout=out)
        assert out.getvalue().strip() == "warm runners: stopped 2"
        # Nothing comes back: give a runner that was missed the time to get ready and show up.
        time.sleep(3)
        assert _marked(data_dir) == []
        assert all(shape["ready"] == 0 for shape in rt.runtime.warm.state())
    finally:
        next(body, None)
