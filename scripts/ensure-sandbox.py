"""Make sure the local runtime's sandbox works before the platform starts (``make run`` calls it).

With ``PLANQK_SANDBOX=bwrap`` (the default) executions run only inside bubblewrap. Where it is
missing, this installs it when it can (root with apt-get, dnf or apk, saying so) and otherwise
stops with the exact command to run. ``PLANQK_SANDBOX=none`` starts without a sandbox, the
operator's explicit choice: it says what isolation is then missing. Exit status 0 means the
platform may start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtimes.local.handles import LocalConfig
from runtimes.local.sandbox import Sandbox, isolation_gaps

# (package manager, how to refresh its package lists or None, how to install)
INSTALLERS = (
    (
        "apt-get",
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "bubblewrap"],
    ),
    ("dnf", None, ["dnf", "install", "-y", "bubblewrap"]),
    ("apk", None, ["apk", "add", "--no-cache", "bubblewrap"]),
)


def say(text: str) -> None:
    print(f"[sandbox] {text}", flush=True)


def problem() -> str | None:
    Sandbox._bwrap_checked.clear()
    return Sandbox(LocalConfig(data_dir=Path("/nonexistent")), python_prefix=lambda: sys.prefix).problem()


def install() -> bool:
    """Install bubblewrap with the first package manager found; False when there is none."""
    for name, refresh, command in INSTALLERS:
        if not shutil.which(name):
            continue
        say(f"bubblewrap is missing: installing the package 'bubblewrap' with {name} (the sandbox of user code)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(command, env=env).returncode != 0 and refresh is not None:
            subprocess.run(refresh, env=env, check=False)
            subprocess.run(command, env=env, check=False)
        return True
    return False


def manual_command() -> str:
    for name, _refresh, command in INSTALLERS:
        if shutil.which(name):
            return "sudo " + " ".join(c for c in command if c != "-qq")
    return "install bubblewrap with your system's package manager"


def main() -> int:
    wanted = os.environ.get("PLANQK_SANDBOX", "bwrap")
    as_root = os.geteuid() == 0
    if wanted == "none":
        say("PLANQK_SANDBOX=none: starting WITHOUT a sandbox, as you chose.")
        say(isolation_gaps("none", as_root))
        return 0
    if wanted != "bwrap":
        say(f"PLANQK_SANDBOX must be bwrap or none, not {wanted!r}")
        return 2
    why = problem()
    if why is None:
        say("bubblewrap works: user code runs sandboxed")
        return 0
    if why == "bubblewrap not installed" and as_root and install():
        why = problem()
        if why is None:
            say("bubblewrap installed and working: user code runs sandboxed")
            return 0
    say(f"cannot start: user code runs only in a sandbox, and {why}.")
    if why == "bubblewrap not installed":
        say(f"run:  {manual_command()}")
    elif not as_root:
        say("bubblewrap needs unprivileged user namespaces for a worker that is not root: allow them")
        say("(e.g. sudo sysctl -w kernel.unprivileged_userns_clone=1, or the AppArmor profile for bwrap)")
        say("or run the worker as root.")
    say("or start without a sandbox, knowing what that means:  PLANQK_SANDBOX=none make run")
    return 1


if __name__ == "__main__":
    sys.exit(main())
