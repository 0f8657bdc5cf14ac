"""``planqk autocomplete``: completion scripts for bash, zsh and fish, generated from the parser.

Generated rather than written by hand so a new command or option completes without anyone
remembering to update three scripts. The installation instructions are comments at the top, so
the output can be ``eval``-ed or saved as it is.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from planqk_cli.errors import ExitCode

# Options whose value is a path: completed with file names.
_FILE_OPTIONS = {"--file", "--api-spec", "--data-file", "--params-file", "--python", "--output", "--result-file"}


@dataclass
class _Command:
    name: str
    summary: str
    options: list[str] = field(default_factory=list)
    #: option -> its fixed choices (e.g. -q: NONE IBM DWAVE)
    choices: dict[str, list[str]] = field(default_factory=dict)
    #: options that take a value
    valued: list[str] = field(default_factory=list)
    positional_choices: list[str] = field(default_factory=list)


def _commands() -> list[_Command]:
    from planqk_cli.main import build_parser, command_parsers

    parser = build_parser()
    summaries = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
    result = []
    for name, sub in command_parsers(parser).items():
        command = _Command(name=name, summary=summaries.get(name, ""))
        for action in sub._actions:
            if action.option_strings:
                command.options.extend(action.option_strings)
                if action.nargs != 0:
                    command.valued.extend(action.option_strings)
                if action.choices:
                    for option in action.option_strings:
                        command.choices[option] = [str(choice) for choice in action.choices]
            elif action.choices:
                command.positional_choices = [str(choice) for choice in action.choices]
        if name == "help":
            command.positional_choices = list(command_parsers(parser))
        result.append(command)
    return result


def bash_script() -> str:
    """The bash completion function (also used by zsh through bashcompinit)."""
    commands = _commands()
    names = " ".join(c.name for c in commands)
    cases = []
    for command in commands:
        value_cases = []
        for option, choices in command.choices.items():
            value_cases.append(
                f'            {option}) COMPREPLY=($(compgen -W "{" ".join(choices)}" -- "$cur")); return;;'
            )
        file_opts = [o for o in command.valued if o in _FILE_OPTIONS]
        if file_opts:
            value_cases.append(f'            {"|".join(file_opts)}) COMPREPLY=($(compgen -f -- "$cur")); return;;')
        other = [o for o in command.valued if o not in command.choices and o not in _FILE_OPTIONS]
        if other:
            value_cases.append(f"            {'|'.join(other)}) return;;")
        positional = " ".join(command.positional_choices)
        cases.append(
            f"        {command.name})\n"
            f'            case "$prev" in\n' + "\n".join(value_cases) + ("\n" if value_cases else "") +
            f"            esac\n"
            f'            if [[ "$cur" == -* ]]; then\n'
            f'                COMPREPLY=($(compgen -W "{" ".join(command.options)}" -- "$cur"))\n'
            f'            else\n'
            f'                COMPREPLY=($(compgen -W "{positional}" -- "$cur"))\n'
            f"            fi;;"
        )  # fmt: skip
    return (
        "_planqk() {\n"
        '    local cur prev cmd i\n'
        '    cur="${COMP_WORDS[COMP_CWORD]}"\n'
        '    prev="${COMP_WORDS[COMP_CWORD-1]}"\n'
        "    cmd=\"\"\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        '        if [[ "${COMP_WORDS[i]}" != -* ]]; then cmd="${COMP_WORDS[i]}"; break; fi\n'
        "    done\n"
        "    COMPREPLY=()\n"
        '    case "$cmd" in\n'
        '        "")\n'
        f'            COMPREPLY=($(compgen -W "{names} --help --version" -- "$cur"));;\n'
        + "\n".join(cases) + "\n"
        "    esac\n"
        "}\n"
        "complete -o default -F _planqk planqk\n"
    )  # fmt: skip


def zsh_script() -> str:
    """zsh: the bash function through zsh's bashcompinit."""
    return "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + bash_script()


def fish_script() -> str:
    """fish: one `complete` line per command and option."""
    commands = _commands()
    names = " ".join(c.name for c in commands)
    lines = ["complete -c planqk -f"]
    for command in commands:
        lines.append(
            f"complete -c planqk -n 'not __fish_seen_subcommand_from {names}' -a {command.name} "
            f"-d {shlex.quote(command.summary)}"
        )
    for command in commands:
        condition = f"'__fish_seen_subcommand_from {command.name}'"
        if command.positional_choices:
            lines.append(f"complete -c planqk -n {condition} -a {shlex.quote(' '.join(command.positional_choices))}")
        seen: set[str] = set()
        for option in command.options:
            if option in seen or not option.startswith("--"):
                continue
            seen.add(option)
            parts = [f"complete -c planqk -n {condition} -l {option[2:]}"]
            short = _short_for(command, option)
            if short:
                parts.append(f"-s {short[1:]}")
            if option in command.choices:
                parts.append(f"-x -a {shlex.quote(' '.join(command.choices[option]))}")
            elif option in _FILE_OPTIONS:
                parts.append("-r -F")
            elif option in command.valued:
                parts.append("-x")
            lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def _short_for(command: _Command, long_option: str) -> str | None:
    # Option strings of one action are listed together: the short one right before the long one.
    index = command.options.index(long_option)
    if index > 0 and len(command.options[index - 1]) == 2 and command.options[index - 1].startswith("-"):
        return command.options[index - 1]
    return None


_INSTRUCTIONS = {
    "bash": (
        "# planqk completion for bash. Install it for new shells with:\n"
        "#   planqk autocomplete bash > ~/.local/share/bash-completion/completions/planqk\n"
        "# or add this line to ~/.bashrc:\n"
        '#   eval "$(planqk autocomplete bash)"\n'
        "# then open a new shell (or run: source ~/.bashrc).\n"
    ),
    "zsh": (
        "# planqk completion for zsh. Install it by adding this line to ~/.zshrc:\n"
        '#   eval "$(planqk autocomplete zsh)"\n'
        "# then open a new shell (or run: source ~/.zshrc).\n"
    ),
    "fish": (
        "# planqk completion for fish. Install it with:\n"
        "#   planqk autocomplete fish > ~/.config/fish/completions/planqk.fish\n"
        "# New fish shells pick it up by themselves.\n"
    ),
}

_SCRIPTS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}


def detect_shell() -> str:
    """The user's shell from $SHELL, bash when it is none of ours."""
    name = Path(os.environ.get("SHELL", "")).name
    return name if name in _SCRIPTS else "bash"


def autocomplete(args: argparse.Namespace) -> int:
    """Print the completion script of a shell, instructions first (as comments)."""
    shell = args.shell or detect_shell()
    print(_INSTRUCTIONS[shell] + _SCRIPTS[shell](), end="")
    return ExitCode.OK
