"""The local runtime: virtual environments and supervised, sandboxed subprocesses.

- :mod:`~runtimes.local.sandbox`: bubblewrap command lines, cgroups, uid checks;
- :mod:`~runtimes.local.environments`: the virtual environment per requirements hash (file
  lock, pip, garbage collection) and each version's code folder;
- :mod:`~runtimes.local.executions`: start, poll, read, cancel, clean up;
- :mod:`~runtimes.local.supervisor`: the standard-library program that runs one execution;
- :mod:`~runtimes.local.runtime`: :class:`LocalRuntime`, which orchestrates them.
"""

from runtimes.local.handles import LocalBuildHandle, LocalConfig, LocalExecutionHandle
from runtimes.local.runtime import LocalRuntime
from runtimes.local.sandbox import accessible_to

__all__ = ["LocalBuildHandle", "LocalConfig", "LocalExecutionHandle", "LocalRuntime", "accessible_to"]
