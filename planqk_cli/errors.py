"""Exit codes and the one error type of the CLI.

Every failure a user can cause or meet (bad arguments, files, a portal that refuses or cannot be
reached) is a :class:`CliError` with its own exit code; ``main`` prints its message and exits
with that code, never with a traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of ``planqk``: stable, so scripts can rely on them."""

    OK = 0
    #: A bug in the CLI (reported without a traceback; set PLANQK_DEBUG=1 to see it).
    INTERNAL = 1
    #: Bad command line: unknown option, invalid JSON in -d/-p, missing argument.
    USAGE = 2
    #: No token stored for this portal: run ``planqk login -t TOKEN``.
    NOT_LOGGED_IN = 3
    #: The portal rejected the token (401): it expired, was revoked or is wrong.
    AUTH_REJECTED = 4
    #: The portal cannot be reached (connection refused, DNS, timeout).
    UNREACHABLE = 5
    #: The current folder holds no user code template (no src/program.py).
    NO_TEMPLATE = 6
    #: The portal refused the request (4xx, e.g. a zip it does not accept); its message is shown.
    REFUSED = 7
    #: The service's build failed or was cancelled; the build log is shown.
    BUILD_FAILED = 8
    #: The job failed or was cancelled; its error code and detail are shown.
    JOB_FAILED = 9
    #: The service or job does not exist (or is not yours).
    NOT_FOUND = 10
    #: The portal answered with something that is not its API (5xx, not JSON).
    BAD_ANSWER = 11
    #: A local file is missing, unreadable, not valid JSON or would be overwritten.
    FILE_ERROR = 12
    #: ``planqk serve`` cannot listen on the address (port in use, no permission).
    SERVE_FAILED = 13
    #: Interrupted with Ctrl-C while waiting (a build or job goes on on the portal).
    INTERRUPTED = 130


EXIT_CODE_HELP: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "success"),
    (ExitCode.INTERNAL, "internal error of the CLI (PLANQK_DEBUG=1 shows the traceback)"),
    (ExitCode.USAGE, "bad command line (unknown option, invalid JSON argument)"),
    (ExitCode.NOT_LOGGED_IN, "not logged in to this portal (planqk login -t TOKEN)"),
    (ExitCode.AUTH_REJECTED, "token rejected: expired, revoked or wrong (401)"),
    (ExitCode.UNREACHABLE, "portal unreachable"),
    (ExitCode.NO_TEMPLATE, "no user code template in the current folder (no src/program.py)"),
    (ExitCode.REFUSED, "the portal refused the request (its message is shown)"),
    (ExitCode.BUILD_FAILED, "the build failed or was cancelled (the build log is shown)"),
    (ExitCode.JOB_FAILED, "the job failed or was cancelled (its code and detail are shown)"),
    (ExitCode.NOT_FOUND, "service or job not found"),
    (ExitCode.BAD_ANSWER, "the portal answered with an error or something that is not its API"),
    (ExitCode.FILE_ERROR, "a local file is missing, unreadable, not JSON or would be overwritten"),
    (ExitCode.SERVE_FAILED, "planqk serve cannot listen on the address"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C) while waiting"),
)


class CliError(Exception):
    """A failure shown to the user as ``Error: <message>`` (plus an optional hint) and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    exit_code = ExitCode.USAGE


class NotLoggedIn(CliError):
    exit_code = ExitCode.NOT_LOGGED_IN


class AuthRejected(CliError):
    exit_code = ExitCode.AUTH_REJECTED


class Unreachable(CliError):
    exit_code = ExitCode.UNREACHABLE


class NoTemplate(CliError):
    exit_code = ExitCode.NO_TEMPLATE


class Refused(CliError):
    exit_code = ExitCode.REFUSED


class NotFound(CliError):
    exit_code = ExitCode.NOT_FOUND


class BadAnswer(CliError):
    exit_code = ExitCode.BAD_ANSWER


class FileProblem(CliError):
    exit_code = ExitCode.FILE_ERROR
