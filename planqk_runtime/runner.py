"""The runner behind ``python -m planqk_runtime``; the contract is documented in the package.

:func:`execute` does the work and returns the outcome without touching the process;
:func:`main` adds the process-level parts: the result channel (:mod:`planqk_runtime.channel`),
logging, line-buffered stdout, the final line on a private copy of stdout and ``os._exit``.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc
import contextlib
import dataclasses
import datetime
import decimal
import enum
import importlib
import inspect
import json
import logging
import os
import pathlib
import sys
import threading
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from planqk_runtime.channel import ResultChannel, take_over, take_over_warm
from planqk_runtime.protocol import (
    KIND_ERROR,
    KIND_RESULT,
    ErrorCode,
    ExitCode,
    format_error_line,
    format_result_line,
)

logger = logging.getLogger("planqk_runtime")

DEFAULT_ENTRY_POINT = "src.program:run"
DEFAULT_INPUT_DIR = "/var/input"

# Values that are JSON already: returned plainly by run(), they are the result itself.
_PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))


@dataclass(frozen=True)
class Outcome:
    """What the runner prints last and how it exits."""

    kind: str
    payload: dict[str, Any]
    exit_code: int

    def line(self) -> str:
        """The final stdout line, without the newline."""
        if self.kind == KIND_RESULT:
            return format_result_line(self.payload)
        return format_error_line(self.payload)


class RunnerFailure(Exception):
    """A failure the runner detected; becomes an ErrorResponse with exit code 2."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def outcome(self) -> Outcome:
        """The ErrorResponse for this failure."""
        return _error(self.code, self.detail, ExitCode.RUNNER_ERROR)


def _error(code: str, detail: str, exit_code: int) -> Outcome:
    return Outcome(KIND_ERROR, {"code": code, "detail": detail}, int(exit_code))


def _describe_exception(exc: BaseException) -> str:
    # Builtins by their bare name (ValueError), everything else qualified so the user can find it.
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    message = str(exc)
    return f"{name}: {message}" if message else name


def _print_traceback() -> None:
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()


# --- input ---------------------------------------------------------------------------------


def _is_false(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("false", "0", "no")


def _parse_json_text(text: str, source: str) -> Any:
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RunnerFailure(ErrorCode.INVALID_INPUT, f"{source} is not valid JSON: {exc}") from exc


def _decode_base64(value: str, source: str) -> str:
    # `base64` without -w 0 wraps its output, and padding is often lost when copy-pasting.
    compact = "".join(value.split())
    compact += "=" * (-len(compact) % 4)
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        raw = base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RunnerFailure(
            ErrorCode.INVALID_INPUT,
            f"{source} is not valid base64 ({exc}); set BASE64_ENCODED=false to pass plain JSON",
        ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RunnerFailure(ErrorCode.INVALID_INPUT, f"{source} does not decode to UTF-8 text: {exc}") from exc


def read_input(name: str, *, environ: Mapping[str, str], input_dir: Path) -> Any:
    """The ``data`` or ``params`` input: files first, then the environment, else ``{}``.

    Raises :class:`RunnerFailure` (``INVALID_INPUT``) for input that is there but unreadable.
    """
    for path in (input_dir / name / f"{name}.json", input_dir / f"{name}.json"):
        # is_file: `docker run -v` of a host file that does not exist mounts an empty directory.
        if not path.is_file():
            continue
        logger.debug("reading %s from %s", name, path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunnerFailure(ErrorCode.INVALID_INPUT, f"cannot read {path}: {exc}") from exc
        return _parse_json_text(text, str(path))
    variable = f"{name.upper()}_VALUE"
    value = environ.get(variable)
    if value is None or not value.strip():
        logger.debug("no %s given, using {}", name)
        return {}
    if _is_false(environ.get("BASE64_ENCODED")):
        logger.debug("reading %s from %s (plain JSON)", name, variable)
        return _parse_json_text(value, variable)
    logger.debug("reading %s from %s (base64)", name, variable)
    return _parse_json_text(_decode_base64(value, variable), f"{variable} (decoded)")


# --- entry point ---------------------------------------------------------------------------


def load_entry_point(spec: str, *, quiet: bool = False) -> Callable[..., Any]:
    """Import ``module:function`` (or ``module.function``) from the user code.

    Raises :class:`RunnerFailure` with ``ENTRY_POINT_NOT_FOUND`` when the module or the function
    does not exist and ``IMPORT_ERROR`` when importing the user code raised (its traceback is
    printed, unless ``quiet``).
    """
    module_name, sep, attr_path = spec.partition(":")
    if not sep:
        module_name, _, attr_path = spec.rpartition(".")
    if not module_name or not attr_path:
        raise RunnerFailure(ErrorCode.ENTRY_POINT_NOT_FOUND, f"ENTRY_POINT {spec!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise RunnerFailure(
                ErrorCode.ENTRY_POINT_NOT_FOUND,
                f"module {module_name!r} of entry point {spec!r} not found in {os.getcwd()}",
            ) from exc
        if not quiet:
            _print_traceback()
        raise RunnerFailure(
            ErrorCode.IMPORT_ERROR, f"importing {module_name} failed: {_describe_exception(exc)}"
        ) from exc
    except BaseException as exc:
        # SyntaxError, an exception at import time, even sys.exit(): the user code is broken.
        if not quiet:
            _print_traceback()
        raise RunnerFailure(
            ErrorCode.IMPORT_ERROR, f"importing {module_name} failed: {_describe_exception(exc)}"
        ) from exc
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise RunnerFailure(
                ErrorCode.ENTRY_POINT_NOT_FOUND, f"{module_name} has no attribute {attr_path!r}"
            ) from exc
    if not callable(target):
        raise RunnerFailure(
            ErrorCode.ENTRY_POINT_NOT_FOUND,
            f"{module_name}:{attr_path} is a {type(target).__name__}, not a function",
        )
    return target


# --- result --------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    # numpy arrays and scalars (without importing numpy): the usual non-JSON values in results.
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _strict_json(value: Any) -> Any:
    """``value`` as plain JSON data, or :class:`RunnerFailure` (``RESULT_NOT_SERIALIZABLE``)."""
    try:
        return json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise RunnerFailure(
            ErrorCode.RESULT_NOT_SERIALIZABLE,
            f"the value returned by run() cannot be serialised to JSON: {exc}",
        ) from exc


def _response_fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    # The object's own to_json() first: the template's serialises nested objects via __dict__.
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        type_name = type(obj).__name__
        try:
            raw = to_json()
        except Exception as exc:
            _print_traceback()
            raise RunnerFailure(
                ErrorCode.RESULT_NOT_SERIALIZABLE, f"{type_name}.to_json() raised {_describe_exception(exc)}"
            ) from exc
        if isinstance(raw, bytes | str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise RunnerFailure(
                    ErrorCode.RESULT_NOT_SERIALIZABLE, f"{type_name}.to_json() did not return JSON: {exc}"
                ) from exc
        if not isinstance(raw, dict):
            raise RunnerFailure(
                ErrorCode.RESULT_NOT_SERIALIZABLE,
                f"{type_name}.to_json() gave a {type(raw).__name__}, expected a JSON object",
            )
        return raw
    return {name: getattr(obj, name, None) for name in names}


def interpret_return_value(value: Any) -> Outcome:
    """Turn what ``run`` returned into the final outcome (see the package docstring)."""
    if not isinstance(value, _PLAIN_TYPES):
        has_result = hasattr(value, "result")
        is_error = hasattr(value, "code") and hasattr(value, "detail")
        if is_error and not has_result:
            fields = _response_fields(value, ("code", "detail"))
            code, detail = fields.get("code"), fields.get("detail")
            detail_text = detail if isinstance(detail, str) else json.dumps(_strict_json(detail))
            return _error(str(code), detail_text, ExitCode.USER_ERROR)
        if has_result:
            fields = _response_fields(value, ("result", "metadata"))
            payload = {"result": fields.get("result"), "metadata": fields.get("metadata")}
            return Outcome(KIND_RESULT, _strict_json(payload), ExitCode.SUCCESS)
    return Outcome(KIND_RESULT, _strict_json({"result": value, "metadata": None}), ExitCode.SUCCESS)


# --- the current generation (Kipu Quantum Hub's qhub-serve / qhub-commons convention) --------

#: ``current`` runs the entry point the current way (see :mod:`planqk_runtime.generation`).
GENERATION_ENV = "PLANQK_GENERATION"
CURRENT = "current"


class _Unconvertible(ValueError):
    pass


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _is_named(annotation: Any, name: str) -> bool:
    """``annotation`` is ``name`` or ``Optional[name]``: the Hub's platform types, by duck typing."""
    if getattr(annotation, "__name__", None) == name:
        return True
    return any(getattr(arg, "__name__", None) == name for arg in typing.get_args(annotation) if arg is not type(None))


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in _UNION_ORIGINS and type(None) in typing.get_args(annotation)


def convert(value: Any, annotation: Any) -> Any:
    """``value`` (JSON) as ``annotation`` the way ``qhub-commons`` binds a parameter: pydantic
    models through their ``model_validate`` (duck typing; the runner never imports pydantic),
    simple types, lists, dicts, tuples and sets of them, ``Optional``/``Union``, ``Literal``,
    enums, dataclasses, datetime/date/time, UUID, Decimal and Path. Raises ``_Unconvertible``."""
    if annotation in (inspect.Parameter.empty, Any, object) or isinstance(annotation, str):
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return convert(value, args[0])
    if origin in _UNION_ORIGINS:
        if value is None and type(None) in args:
            return None
        problems = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg)
            except _Unconvertible as exc:
                problems.append(str(exc))
        raise _Unconvertible("; ".join(problems) or f"expected {_type_name(annotation)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Unconvertible(f"expected one of {list(args)!r}, got {value!r}"[:300])
    validate = getattr(annotation, "model_validate", None)
    if isinstance(annotation, type) and callable(validate):
        try:
            return validate(value)
        except Exception as exc:  # pydantic's ValidationError lists every problem
            raise _Unconvertible(str(exc)) from None
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        container = origin or annotation
        if not isinstance(value, list):
            raise _Unconvertible(f"expected a list, got {type(value).__name__}")
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _Unconvertible(f"expected {len(args)} items, got {len(value)}")
            return tuple(convert(item, arg) for item, arg in zip(value, args, strict=True))
        inner = args[0] if args else Any
        return container(convert(item, inner) for item in value)
    if origin is dict or annotation is dict or origin in (collections.abc.Mapping, collections.abc.MutableMapping):
        if not isinstance(value, dict):
            raise _Unconvertible(f"expected an object, got {type(value).__name__}")
        inner = args[1] if len(args) == 2 else Any
        return {key: convert(item, inner) for key, item in value.items()}
    if not isinstance(annotation, type):
        return value  # a typing construct the runner does not know: the value as it came
    if issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            raise _Unconvertible(f"expected one of {[m.value for m in annotation]!r}, got {value!r}"[:300]) from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Unconvertible(f"expected true or false, got {type(value).__name__}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Unconvertible(f"expected an integer, got {type(value).__name__}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Unconvertible(f"expected a number, got {type(value).__name__}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Unconvertible(f"expected a string, got {type(value).__name__}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise _Unconvertible(f"expected an object, got {type(value).__name__}")
        try:
            return annotation(**value)
        except TypeError as exc:
            raise _Unconvertible(str(exc)) from None
    for kind, parse in _PARSED_TYPES:
        if issubclass(annotation, kind):
            try:
                return parse(annotation, value)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise _Unconvertible(f"expected {annotation.__name__}: {exc}") from None
    if isinstance(value, annotation):
        return value
    raise _Unconvertible(f"expected {annotation.__name__}, got {type(value).__name__}")


def _parse_text(cls: Any, value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return cls.fromisoformat(value) if hasattr(cls, "fromisoformat") else cls(value)


_PARSED_TYPES: tuple[tuple[type, Callable[[Any, Any], Any]], ...] = (
    (datetime.datetime, _parse_text),
    (datetime.date, _parse_text),
    (datetime.time, _parse_text),
    (uuid.UUID, _parse_text),
    (decimal.Decimal, lambda cls, value: cls(str(value)) if isinstance(value, int | float | str) else cls(value)),
    (pathlib.PurePath, _parse_text),
)
_UNION_ORIGINS = (typing.Union, types.UnionType)


def _annotations(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        # A forward reference that does not resolve: such parameters take the value as it came.
        return dict(getattr(function, "__annotations__", {}) or {})


def bind_arguments(function: Callable[..., Any], data: Any, *, environ: Mapping[str, str]) -> dict[str, Any]:
    """``run()``'s keyword arguments from the request object ``data``, by parameter name.

    As ``qhub-commons`` (``parameters.files_to_parameters``): a parameter takes the top-level key
    of its name, converted to its annotation; a missing one its default, ``None`` when it is
    Optional, an empty model when its pydantic model has defaults for everything; a
    ``SecretValue`` parameter its ``SECRET_<NAME>`` variable (:mod:`planqk_runtime.secrets`).
    Keys without a parameter are ignored. Raises :class:`RunnerFailure` (``INVALID_INPUT``)
    naming the parameter when one is missing or its value does not fit.
    """
    from planqk_runtime.secrets import env_name

    if not isinstance(data, dict):
        raise RunnerFailure(ErrorCode.INVALID_INPUT, f"the input must be a JSON object, not {type(data).__name__}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise RunnerFailure(ErrorCode.ENTRY_POINT_NOT_FOUND, f"the signature of run() cannot be read: {exc}") from exc
    hints = _annotations(function)
    arguments: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        has_default = parameter.default is not parameter.empty
        if _is_named(annotation, "DataPool"):
            raise RunnerFailure(
                ErrorCode.INVALID_INPUT,
                f"run() parameter {name!r} is a DataPool: mounted data pools are not supported on this platform; "
                "pass the data in the request, or a data pool reference in the 2022 template",
            )
        if _is_named(annotation, "SecretValue"):
            variable = env_name(name)
            secret = environ.get(variable)
            if secret is not None:
                cls = (
                    annotation
                    if isinstance(annotation, type)
                    else next(
                        arg for arg in typing.get_args(annotation) if getattr(arg, "__name__", None) == "SecretValue"
                    )
                )
                arguments[name] = cls(value=secret)
            elif has_default:
                arguments[name] = parameter.default
            elif _optional(annotation):
                arguments[name] = None
            else:
                raise RunnerFailure(
                    ErrorCode.INVALID_INPUT,
                    f'run() needs the secret {name!r}: send it in the request\'s $secrets ({{"$secrets": '
                    f'{{"{name}": "..."}}}}); the program reads it from {variable}',
                )
            continue
        if name in data:
            try:
                arguments[name] = convert(data[name], annotation)
            except _Unconvertible as exc:
                raise RunnerFailure(
                    ErrorCode.INVALID_INPUT, f"input {name!r} does not fit run()'s {_type_name(annotation)}: {exc}"
                ) from None
            continue
        if has_default:
            arguments[name] = parameter.default
        elif _optional(annotation):
            arguments[name] = None
        else:
            validate = getattr(annotation, "model_validate", None)
            if isinstance(annotation, type) and callable(validate):
                with contextlib.suppress(Exception):
                    arguments[name] = validate({})
                    continue
            raise RunnerFailure(
                ErrorCode.INVALID_INPUT,
                f"run() needs the input {name!r} ({_type_name(annotation)}), a top-level key of the request, "
                "which is missing",
            )
    return arguments


def _describe_problem(exc: BaseException) -> str:
    """A failure of the current generation: qhub-commons' ``HandlerError(title, detail)`` (an RFC
    7807 problem, recognised by its attributes) by its own words, anything else as usual."""
    title, detail = getattr(exc, "title", None), getattr(exc, "detail", None)
    if isinstance(title, str) and isinstance(detail, str):
        return title if detail in ("", title) else f"{title}: {detail}"
    return _describe_exception(exc)


def _current_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return _json_default(value)


def interpret_current_value(value: Any) -> Outcome:
    """The current generation's result: ``run()``'s return value as JSON (a pydantic model via
    ``model_dump(mode="json")``, a dict as it is, anything else JSON can hold as it is)."""
    try:
        result = json.loads(json.dumps(value, default=_current_default, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise RunnerFailure(
            ErrorCode.RESULT_NOT_SERIALIZABLE,
            f"the value returned by run() cannot be serialised to JSON: {exc}",
        ) from exc
    return Outcome(KIND_RESULT, {"result": result, "metadata": None}, ExitCode.SUCCESS)


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preloaded:
    """What a warm runner imported before its execution existed: the entry point ``spec`` and
    its function, or the failure importing it gave. After a failure the execution imports it
    again, with its variables (code may need them at import, as a cold runner allows), and only
    that attempt's failure is reported."""

    spec: str
    function: Callable[..., Any] | None = None
    failure: RunnerFailure | None = None


def _entry_spec(env: Mapping[str, str]) -> str:
    return (env.get("ENTRY_POINT") or DEFAULT_ENTRY_POINT).strip()


def _code_on_path() -> None:
    cwd = os.getcwd()
    # `python -m` puts the working directory on sys.path already; other launchers may not.
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def preload(*, environ: Mapping[str, str] | None = None) -> Preloaded:
    """Import the entry point ahead of the input (a warm runner; see :mod:`planqk_runtime.channel`)."""
    env = os.environ if environ is None else environ
    _code_on_path()
    spec = _entry_spec(env)
    try:
        return Preloaded(spec, function=load_entry_point(spec, quiet=True))
    except RunnerFailure as failure:
        return Preloaded(spec, failure=failure)


def execute(*, environ: Mapping[str, str] | None = None, preloaded: Preloaded | None = None) -> Outcome:
    """Read the input, call the entry point and interpret its return value.

    Never raises for anything the user or the input did wrong: every failure is an Outcome.
    ``preloaded`` is what a warm runner imported already (used when it names the same entry point).
    """
    env = os.environ if environ is None else environ
    _code_on_path()
    input_dir = Path(env.get("INPUT_DIR") or DEFAULT_INPUT_DIR)
    spec = _entry_spec(env)
    try:
        data = read_input("data", environ=env, input_dir=input_dir)
        params = read_input("params", environ=env, input_dir=input_dir)
        if preloaded is not None and preloaded.spec == spec and preloaded.function is not None:
            function = preloaded.function
        else:
            # Cold, another entry point, or the warm import failed without the execution's variables.
            function = load_entry_point(spec)
    except RunnerFailure as failure:
        logger.error("%s: %s", failure.code, failure.detail)
        return failure.outcome()
    current = (env.get(GENERATION_ENV) or "").strip() == CURRENT
    if current:
        try:
            arguments = bind_arguments(function, data, environ=env)
        except RunnerFailure as failure:
            logger.error("%s: %s", failure.code, failure.detail)
            return failure.outcome()
    logger.debug("calling %s", spec)
    try:
        value = function(**arguments) if current else function(data=data, params=params)
    except BaseException as exc:
        # BaseException: sys.exit() or KeyboardInterrupt inside run() must still give an answer.
        _print_traceback()
        detail = _describe_problem(exc) if current else _describe_exception(exc)
        logger.error("%s raised %s", spec, detail)
        return _error(ErrorCode.EXECUTION_ERROR, detail, ExitCode.RUNNER_ERROR)
    try:
        outcome = interpret_current_value(value) if current else interpret_return_value(value)
    except RunnerFailure as failure:
        logger.error("%s: %s", failure.code, failure.detail)
        return failure.outcome()
    except Exception as exc:
        # A property of the returned object that raises, a broken __getattr__...
        _print_traceback()
        detail = f"the value returned by run() cannot be read: {_describe_exception(exc)}"
        logger.error("%s", detail)
        return _error(ErrorCode.RESULT_NOT_SERIALIZABLE, detail, ExitCode.RUNNER_ERROR)
    logger.debug("%s finished: %s", spec, outcome.kind)
    return outcome


class _LineTrackingStream:
    """Wraps sys.stdout to know whether user output ended in the middle of a line.

    The runner's final line must start at the beginning of a line or the platform cannot read
    it. Writes that bypass sys.stdout (its .buffer, os.write, child processes) are not seen.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.mid_line = False

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if text:
            self.mid_line = not text.endswith("\n")
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


#: Library loggers held at WARNING unless LOG_LEVEL=DEBUG.
NOISY_LOGGERS = (
    "qiskit",
    "qiskit_aer",
    "qiskit_ibm_runtime",
    "numba",
    "stevedore",
    "dwave",
    "dimod",
    "neal",
    "urllib3",
    "matplotlib",
    "PIL",
    "asyncio",
)


def _log_level(environ: Mapping[str, str]) -> tuple[str, int | None]:
    """``LOG_LEVEL`` as given and as a level (None when it names none)."""
    raw = (environ.get("LOG_LEVEL") or "INFO").strip().upper()
    if raw.lstrip("-").isdigit():
        return raw, int(raw)
    named = logging.getLevelName(raw)
    return raw, named if isinstance(named, int) else None


def _configure_logging(environ: Mapping[str, str]) -> None:
    raw, level = _log_level(environ)
    logging.basicConfig(
        level=level if level is not None else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level is None:
        logger.warning("unknown LOG_LEVEL %r, using INFO", raw)
    if level is None or level > logging.DEBUG:
        # Libraries' chatter (Qiskit's transpiler logs every pass at INFO) buries the service's
        # own lines: only their warnings show, unless LOG_LEVEL=DEBUG asks for everything.
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, level or logging.INFO))


def _relevel_logging(before: Mapping[str, str], after: Mapping[str, str]) -> None:
    """A warm runner set logging up with its own variables, before its execution's arrived: the
    execution's ``LOG_LEVEL`` applies from the go on, as it would have from the start on a cold
    runner (the handlers stay: user code may have added its own at import)."""
    raw, level = _log_level(after)
    raw_before, old = _log_level(before)
    if raw == raw_before:
        return
    if level is None:
        logger.warning("unknown LOG_LEVEL %r, using INFO", raw)
    logging.getLogger().setLevel(level if level is not None else logging.INFO)
    # What _configure_logging gave the libraries' loggers at the start.
    was = max(logging.WARNING, old or logging.INFO) if old is None or old > logging.DEBUG else logging.NOTSET
    for name in NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if noisy.level != was:
            continue  # set otherwise by user code at import: its choice stays
        if level is None or level > logging.DEBUG:
            noisy.setLevel(max(logging.WARNING, level or logging.INFO))
        else:
            noisy.setLevel(logging.NOTSET)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _finish(outcome: Outcome, tracker: _LineTrackingStream | None, channel: ResultChannel | None = None) -> NoReturn:
    line = outcome.line()
    exit_code = outcome.exit_code
    streams = (sys.stdout, tracker, sys.__stdout__, sys.stderr)
    for stream in {id(s): s for s in streams if s is not None}.values():
        # A stream user code closed or broke must not cost the answer.
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        logging.shutdown()
    if channel is not None:
        # The answer itself; the stdout line below is only for people reading the log.
        channel.send(line)
    try:
        # Keep a private copy of stdout for the final line, then point fd 1 at stderr: threads
        # still running can no longer write after (or into) the answer.
        result_fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        result_fd = 1
    # Start on a fresh line if user output ended mid-line; with other threads alive one may
    # have left half a line just before the switch, so a fresh line is always started then.
    mid_line = tracker is None or tracker.mid_line or threading.active_count() > 1
    prefix = "\n" if mid_line else ""
    # OSError: nobody reads stdout any more; the exit code still tells the outcome.
    with contextlib.suppress(OSError):
        _write_all(result_fd, (prefix + line + "\n").encode("ascii"))
    os._exit(exit_code)


def main() -> NoReturn:
    """Run the user code under the contract and leave the process with the contract's exit code."""
    tracker: _LineTrackingStream | None = None
    # Before any user code is imported: its children must never inherit the channel.
    channel = take_over()
    warm = take_over_warm()
    try:
        # Line buffering: logs and interim results reach the platform while the job runs.
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(line_buffering=True)
        tracker = _LineTrackingStream(sys.stdout)
        sys.stdout = tracker
        _configure_logging(os.environ)
        preloaded = None
        if warm is not None:
            # A warm runner: import now, then wait for the one execution this process will run.
            preloaded = preload()
            env = warm.wait_for_go()
            if env is None:
                # Stopped before any execution was given to it (idle, or the pool shrank).
                os._exit(ExitCode.INTERNAL_ERROR)
            before = dict(os.environ)
            os.environ.update(env)
            _relevel_logging(before, os.environ)
        outcome = execute(preloaded=preloaded)
    except BaseException as exc:
        _print_traceback()
        outcome = _error(
            ErrorCode.INTERNAL_ERROR,
            f"the runner failed: {_describe_exception(exc)}",
            ExitCode.INTERNAL_ERROR,
        )
    _finish(outcome, tracker, channel)
