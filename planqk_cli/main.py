"""The ``planqk`` command: argument parsing, dispatch and the translation of errors to exit codes.

See the package docstring (``planqk help``) for the commands and the exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from planqk_cli import __version__, term
from planqk_cli.config import DEFAULT_ENDPOINT, ENDPOINT_ENV
from planqk_cli.errors import EXIT_CODE_HELP, CliError, ExitCode

Handler = Callable[[argparse.Namespace], int]


def _exit_codes_text() -> str:
    return "\n".join(f"  {int(code):<4} {text}" for code, text in EXIT_CODE_HELP)


_TOP_EPILOG = f"""\
Start here:
  planqk init my-service && cd my-service   the user code template
  python -m src                             run it on input/*.json
  planqk serve                              its service API locally (Swagger UI at /docs)
  planqk login -t TOKEN                     a personal access token from the portal's settings
  planqk up                                 create the service and wait for its build
  planqk run -d '{{"values": [1, 2]}}'           run it on the portal

The portal: --endpoint URL or {ENDPOINT_ENV} (default {DEFAULT_ENDPOINT}).
Run `planqk help COMMAND` (or `planqk COMMAND --help`) for a command's options.

Exit codes:
{_exit_codes_text()}
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _lazy(module: str, function: str) -> Handler:
    # Commands import their modules on use: `planqk --help` and completion stay fast.
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"planqk_cli.{module}"), function)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (also the source of `planqk help` and the completion scripts)."""
    parser = argparse.ArgumentParser(
        prog="planqk",
        description="The PlanQK command line: create, test, upload and run quantum services.",
        epilog=_TOP_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"planqk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    portal = argparse.ArgumentParser(add_help=False)
    portal.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"the portal's address (default: ${ENDPOINT_ENV}, else the one you logged in to, else {DEFAULT_ENDPOINT})",
    )

    def command(name: str, handler: Handler, summary: str, *, parents: Sequence[argparse.ArgumentParser] = (),
                description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:  # fmt: skip
        # Descriptions are wrapped here, epilogs kept as written (their examples are laid out).
        text = textwrap.fill(description or summary, width=100)
        sub = commands.add_parser(
            name, help=summary, description=text, epilog=epilog,
            parents=list(parents), formatter_class=_Formatter,
        )  # fmt: skip
        sub.set_defaults(handler=handler)
        return sub

    login = command(
        "login", _lazy("commands", "login"), "log in with a personal access token",
        parents=[portal],
        description="Check a personal access token against the portal (GET /api/v1/me) and store it with the "
        "portal's address in ~/.config/planqk/config.json (mode 600; $XDG_CONFIG_HOME is respected).",
        epilog="Create the token in the portal: Settings > Personal access tokens (scope api).\n\n"
        "Examples:\n  planqk login -t pqk_...\n  planqk login -t pqk_... --endpoint https://portal.example.org",
    )  # fmt: skip
    login.add_argument("-t", "--token", metavar="TOKEN", help="your personal access token (asked for when missing)")

    command(
        "logout", _lazy("commands", "logout"), "forget the stored token",
        description="Delete the stored portal address and token.",
        epilog="Example:\n  planqk logout",
    )  # fmt: skip

    init = command(
        "init", _lazy("commands", "init"), "create the user code template in a new folder",
        description="Write the user code template (the same files as the portal's template.zip) into ./NAME. "
        "Existing files are never overwritten.",
        epilog="Examples:\n  planqk init\n  planqk init my-service\n  planqk init --current my-service",
    )  # fmt: skip
    init.add_argument("name", nargs="?", default="planqk-service", metavar="NAME",
                      help="the folder, also the title of the API spec (default: planqk-service)")  # fmt: skip
    init.add_argument("--current", action="store_true",
                      help="the current generation's template (Kipu Quantum Hub's qhub-serve way): a typed run() "
                      "with pydantic models, its return value as the result, a result file")  # fmt: skip

    openapi = command(
        "openapi", _lazy("openapi", "openapi"), "write openapi-spec.yml from the examples in input/",
        description="Write the service's API spec (openapi-spec.yml) with the data and params schemas inferred "
        "from input/data.json and input/params.json: types, arrays' item types, nested objects and the "
        "examples. An existing file is only replaced with --force.",
        epilog="Examples:\n  planqk openapi\n  planqk openapi --force\n"
        "  python -m src > result.json && planqk openapi --force --result-file result.json",
    )  # fmt: skip
    openapi.add_argument("-o", "--output", default="openapi-spec.yml", metavar="FILE",
                         help="where to write it (default: openapi-spec.yml)")  # fmt: skip
    openapi.add_argument("--force", action="store_true", help="replace an existing file")
    openapi.add_argument("--data-file", default="input/data.json", metavar="FILE",
                         help="the example input data (default: input/data.json)")  # fmt: skip
    openapi.add_argument("--params-file", default="input/params.json", metavar="FILE",
                         help="the example parameters (default: input/params.json)")  # fmt: skip
    openapi.add_argument("--result-file", metavar="FILE",
                         help="an example result, e.g. the output of `python -m src` (optional)")  # fmt: skip
    openapi.add_argument("--title", help="the API's title (default: the folder's name)")

    up = command(
        "up", _lazy("up", "up"), "create or update a service and wait for its build",
        parents=[portal],
        description="Upload the user code in the current folder (src, requirements.txt, environment.yml, "
        "openapi-spec.yml; or the zip given with --file) as a new service, or as a new version of the "
        "service named in planqk.json, then follow the build. Prompts for what is missing unless --silent. "
        "On success it prints the service's gateway URL.",
        epilog="Examples:\n  planqk up\n  planqk up --silent -n my-service\n"
        "  planqk up --file=user_code.zip --api-spec=openapi-spec.yml\n"
        "  planqk up --plan free --plan per-execution:25 --rpm 60 --concurrency 2",
    )  # fmt: skip
    up.add_argument("--file", metavar="ZIP", help="the zip of your user code (default: zip the current folder)")
    up.add_argument("--api-spec", metavar="YML", help="the OpenAPI file of the service "
                    "(default: ./openapi-spec.yml when the folder is zipped)")  # fmt: skip
    up.add_argument("-n", "--name", help="the service's name (default: the folder's name)")
    up.add_argument("-d", "--description", help="the service's description")
    up.add_argument("-q", "--quantum-backend", type=str.upper, choices=["NONE", "IBM", "DWAVE"],
                    help="the quantum backend: NONE, IBM or DWAVE (default: NONE)")  # fmt: skip
    up.add_argument("--plan", action="append", metavar="PLAN",
                    help="a pricing plan of a new service: free, per-execution:CENTS or monthly:CENTS; "
                    "repeat for several (default: free)")  # fmt: skip
    up.add_argument("--rpm", type=int, metavar="N", help="requests per minute of the paid plans (default: 120)")
    up.add_argument("--concurrency", type=int, metavar="N",
                    help="executions at once of the paid plans (default: 5)")  # fmt: skip
    up.add_argument("--silent", action="store_true", help="never prompt; use the defaults for what is missing")

    run = command(
        "run", _lazy("run", "run"), "run a job on the portal and print its result",
        parents=[portal],
        description="Start a job of a service (POST /api/v1/jobs/), wait for it and print its result JSON. "
        "Data and params default to input/data.json and input/params.json when they exist.",
        epilog="Examples:\n  planqk run\n  planqk run my-service -d '{\"values\": [1, 2]}' -p '{\"round_off\": true}'\n"
        "  planqk run --data-file input/data.json --detached",
    )  # fmt: skip
    run.add_argument("service", nargs="?", metavar="SERVICE",
                     help="the service's name or id (default: the one in ./planqk.json)")  # fmt: skip
    data = run.add_mutually_exclusive_group()
    data.add_argument("-d", "--data", metavar="JSON", help="the input data as JSON")
    data.add_argument("--data-file", metavar="FILE", help="a file with the input data")
    params = run.add_mutually_exclusive_group()
    params.add_argument("-p", "--params", metavar="JSON", help="the parameters as JSON")
    params.add_argument("--params-file", metavar="FILE", help="a file with the parameters")
    run.add_argument("--detached", action="store_true", help="print the job's id and do not wait")
    run.add_argument("--implementation", metavar="ID", help="run an implementation of an algorithm: your "
                     "service made from its latest file (created and built first when needed)")  # fmt: skip
    run.add_argument("--file-version", type=int, metavar="N", help="with --implementation: that file version")

    serve = command(
        "serve", _lazy("serve", "serve"), "serve the service API locally on the code in this folder",
        description="Serve the service API (GET /, POST /, GET /{id}, /{id}/result, /{id}/interim-results, "
        "PUT /{id}/cancel, /{id}/logs) on the user code in the current folder, without authentication. "
        "Each execution runs `python -m planqk_runtime` in its own process. Swagger UI at /docs. "
        "Ctrl-C stops it and the executions still running.",
        epilog="Examples:\n  planqk serve\n  planqk serve -p 9000\n"
        "  curl -X POST localhost:8081/ -H 'Content-Type: application/json' -d '{\"data\": {\"values\": [1]}}'",
    )  # fmt: skip
    serve.add_argument("-p", "--port", type=int, default=8081, help="the port (default: 8081; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--python", help="the interpreter that runs the code, with its packages "
                       "(default: the active virtualenv's or conda environment's, else planqk's own)")  # fmt: skip
    serve.add_argument("--concurrency", type=int, default=max(1, os.cpu_count() or 1),
                       help="executions at the same time; more wait as PENDING (default: the CPU count)")  # fmt: skip

    services = command(
        "services", _lazy("commands", "services"), "list your services",
        parents=[portal], epilog="Examples:\n  planqk services\n  planqk services --json",
    )  # fmt: skip
    services.add_argument("--json", action="store_true", help="print JSON instead of a table")

    implementations = command(
        "implementations", _lazy("implementations", "implementations"), "list the implementations you may use",
        parents=[portal],
        description="The implementations of algorithms you may use (your own, those shared with you, public "
        "ones), each with its latest runnable file. `planqk run --implementation ID` runs one.",
        epilog="Examples:\n  planqk implementations\n  planqk run --implementation <id> -d '{}'",
    )  # fmt: skip
    implementations.add_argument("--algorithm", metavar="ID", help="only this algorithm's implementations")
    implementations.add_argument("--json", action="store_true", help="print JSON instead of a table")

    jobs = command(
        "jobs", _lazy("commands", "jobs"), "list your jobs",
        parents=[portal], epilog="Examples:\n  planqk jobs\n  planqk jobs --service my-service --status FAILED",
    )  # fmt: skip
    jobs.add_argument("--service", metavar="SERVICE", help="only the jobs of this service (name or id)")
    jobs.add_argument("--status", type=str.upper,
                      choices=["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"],
                      help="only jobs with this status")  # fmt: skip
    jobs.add_argument("--limit", type=int, default=50, help="at most this many, newest first (default: 50)")
    jobs.add_argument("--json", action="store_true", help="print JSON instead of a table")

    help_cmd = command(
        "help", _help, "show help for planqk or one of its commands",
        epilog="Examples:\n  planqk help\n  planqk help up",
    )  # fmt: skip
    help_cmd.add_argument("topic", nargs="?", metavar="COMMAND", help="the command to show help for")

    autocomplete = command(
        "autocomplete", _lazy("completion", "autocomplete"), "print the shell completion script and how to install it",
        description="Print the completion script for bash, zsh or fish (default: your $SHELL), with "
        "installation instructions as comments at its top.",
        epilog="Examples:\n  planqk autocomplete\n  planqk autocomplete bash\n"
        "  eval \"$(planqk autocomplete zsh)\"",
    )  # fmt: skip
    autocomplete.add_argument("shell", nargs="?", choices=["bash", "zsh", "fish"], help="the shell")

    parser.set_defaults(handler=None)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parser of each command, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(args: argparse.Namespace) -> int:
    parser = build_parser()
    if args.topic is None:
        parser.print_help()
        return ExitCode.OK
    sub = command_parsers(parser).get(args.topic)
    if sub is None:
        raise CliError(
            f"there is no command {args.topic!r}",
            hint=f"Commands: {', '.join(command_parsers(parser))}",
            exit_code=ExitCode.USAGE,
        )
    sub.print_help()
    return ExitCode.OK


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version or a usage error (code 2)
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    if args.handler is None:
        parser.print_help()
        return ExitCode.OK
    try:
        return int(args.handler(args))
    except CliError as exc:
        term.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `planqk jobs | head`: the reader left; nothing more to say. Keep the interpreter from
        # complaining about the closed stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if os.environ.get("PLANQK_DEBUG"):
            traceback.print_exc()
        term.error(
            f"planqk failed unexpectedly: {type(exc).__name__}: {exc}",
            "This is a bug of the CLI; run with PLANQK_DEBUG=1 for the traceback and report it.",
        )
        return ExitCode.INTERNAL


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script's entry point."""
    sys.exit(run(argv))
