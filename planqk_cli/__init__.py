"""``planqk``: the command line of the PlanQK platform (ARCHITECTURE.md section 4).

Commands (``planqk help COMMAND`` or ``planqk COMMAND --help`` for the options)::

    planqk login -t TOKEN [--endpoint URL]   check a personal access token and store it
    planqk logout                            forget the stored token
    planqk init [NAME]                       write the user code template into ./NAME
    planqk openapi [--force] [-o FILE]       write openapi-spec.yml from input/data.json and params.json
    planqk up [--file ZIP] [--api-spec YML] [-n NAME] [-d DESCRIPTION] [-q NONE|IBM|DWAVE] [--silent]
                                             create the service (or a new version) and wait for its build
    planqk run [SERVICE] [-d JSON] [-p JSON] [--data-file F] [--params-file F] [--detached]
                                             start a job and print its result
    planqk serve [-p PORT] [--host HOST]     the service API on the code in this folder, locally
    planqk services                          your services
    planqk jobs                              your jobs
    planqk help [COMMAND]                    help
    planqk autocomplete [bash|zsh|fish]      the shell completion script and how to install it

Configuration: ``$XDG_CONFIG_HOME/planqk/config.json`` (default ``~/.config/planqk/config.json``,
mode 600) holds the portal's address and the token. ``--endpoint`` or ``PLANQK_ENDPOINT``
chooses the portal (default ``http://127.0.0.1:8000``); the token is only sent to the portal it
was stored for. ``NO_COLOR`` turns colours off, ``PLANQK_DEBUG=1`` shows tracebacks of bugs.

Exit codes (stable; see :class:`planqk_cli.errors.ExitCode`)::

    0    success
    1    internal error of the CLI
    2    bad command line (unknown option, invalid JSON argument)
    3    not logged in to this portal
    4    token rejected: expired, revoked or wrong (the portal answered 401)
    5    portal unreachable
    6    no user code template in the current folder (no src/program.py)
    7    the portal refused the request (e.g. a zip it does not accept); its message is shown
    8    the build failed or was cancelled (the build log is shown)
    9    the job failed or was cancelled (its code and detail are shown)
    10   service or job not found
    11   the portal answered with an error or something that is not its API
    12   a local file is missing, unreadable, not JSON or would be overwritten
    13   planqk serve cannot listen on the address
    130  interrupted (Ctrl-C) while waiting
"""

__version__ = "0.1.0"
