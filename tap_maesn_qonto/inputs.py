"""The command line's input files (``--config``, ``--state``, ``--catalog``), read once and checked.

A missing, corrupt or misshapen file is named in one line instead of a traceback. Each
input is read exactly once: one that cannot be read twice (``--config <(...)``,
``--config /dev/stdin``) is handed to the SDK as a private copy, readable by this
process only, and an empty state file means "no state yet".
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import stat
import tempfile
import typing as t

from tap_maesn_qonto.errors import InvalidStateError, TapStopError

_JSON_FILE_OPTIONS = {
    "--config": "Fix the JSON or point --config at the right file.",
    "--catalog": "Regenerate it with `tap-maesn-qonto --config ... --discover`.",
    "--state": (
        "Restore the last good state (e.g. `meltano state get`) or delete it to start "
        "from start_date."
    ),
}


#: The private directory of copies of inputs read from pipes (where memfd is missing).
_private_dir: list[str] = []


def _read_input(option: str, value: str) -> tuple[str, bool]:
    """Read one --config/--catalog/--state input, the only time it is read.

    Returns its text and whether it is a regular file (which the SDK may read again;
    a pipe, a FIFO or a terminal it may not).
    """
    name, advice = option[2:], _JSON_FILE_OPTIONS[option]
    try:
        # Click reads "-" as standard input for --state and --catalog.
        source: str | int = 0 if value == "-" and option != "--config" else value
        with open(source, "rb", closefd=source != 0) as stream:
            data = stream.read()
            regular = source != 0 and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
            if regular:  # /dev/stdin redirected from a file may share its offset with fd 0
                stream.seek(0)
    except OSError as exc:
        msg = f"Cannot read the {name} file {value}: {exc.strerror or exc}. {advice}"
        raise TapStopError(msg) from None
    try:
        return data.decode("utf-8"), regular
    except UnicodeDecodeError:
        msg = f"The {name} file {value} is not UTF-8 text. {advice}"
        raise TapStopError(msg) from None


def _private_copy(text: str, option: str) -> str:
    """A path the SDK can read ``text`` from, readable by this process only.

    On Linux an anonymous in-memory file: nothing ever reaches a disk. Elsewhere a
    0600 file in a 0700 directory of its own, deleted as soon as the SDK has read it
    (see :func:`discard_private_copies`), and at exit in any case.
    """
    data = text.encode("utf-8")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create(f"tap-maesn-qonto-{option[2:]}")  # close-on-exec: not inherited
        path = f"/proc/self/fd/{fd}"  # open until the process ends; each open reads from 0
        if os.path.exists(path):  # /proc may be missing in odd sandboxes
            with open(fd, "wb", closefd=False) as stream:
                stream.write(data)
            return path
        os.close(fd)
    if not _private_dir:
        _private_dir.append(tempfile.mkdtemp(prefix="tap-maesn-qonto-"))  # mode 0700
        atexit.register(discard_private_copies)
    fd, path = tempfile.mkstemp(suffix=".json", prefix=f"{option[2:]}-", dir=_private_dir[0])
    with open(fd, "wb") as stream:  # mkstemp: mode 0600, O_EXCL
        stream.write(data)
    return path


def discard_private_copies() -> None:
    """Delete the private copies of piped inputs, once the SDK has read them."""
    while _private_dir:
        shutil.rmtree(_private_dir.pop(), ignore_errors=True)


def _json_kind(document: t.Any) -> str:
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    return "a boolean" if isinstance(document, bool) else "a number"


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _checked_input(option: str, value: str) -> str | None:
    """Check one input; return the path to hand the SDK, or None to leave the option out."""
    if option == "--config" and value == "ENV":
        return value
    text, regular = _read_input(option, value)
    name, advice = option[2:], _JSON_FILE_OPTIONS[option]
    error = InvalidStateError if option == "--state" else TapStopError
    body = text.removeprefix("\ufeff")  # a BOM, as some editors write; the SDK accepts it
    if option == "--state" and not body.strip():
        return None  # an empty state file (`touch state.json`) means "no state yet"
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        msg = (
            f"The {name} file {value} is not valid JSON ({exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}). {advice}"
        )
        raise error(msg) from None
    except ValueError as exc:  # NaN, Infinity: Python reads them, the SDK does not
        msg = f"The {name} file {value} is not valid JSON ({exc}). {advice}"
        raise error(msg) from None
    if option == "--state" and document is None:
        return None  # `null`: no state either
    if not isinstance(document, dict):
        msg = (
            f"The {name} file {value} holds {_json_kind(document)}, not a JSON object "
            f"({{...}}). {advice}"
        )
        raise error(msg)
    return value if regular else _private_copy(text, option)


def check_json_files(argv: list[str]) -> list[str]:
    """Read and check every --config/--catalog/--state input; return the argv for the SDK.

    A missing, corrupt or misshapen file is named instead of a traceback. Each input is
    read exactly once: one that cannot be read twice (``--config <(...)``,
    ``--config /dev/stdin``) is handed over as a private copy instead; an empty state
    file is left out (no state yet). Both ``--config FILE`` and ``--config=FILE`` are
    read, and a repeated --config keeps its place (the SDK merges left to right).
    """
    result: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":  # what follows is not an option
            result += argv[index:]
            break
        option, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if option not in _JSON_FILE_OPTIONS or (not equals and index + 1 == len(argv)):
            result.append(word)  # not ours, or a missing value that Click will report
            index += 1
            continue
        value = inline if equals else argv[index + 1]
        given = argv[index : index + (1 if equals else 2)]
        index += len(given)
        handed = _checked_input(option, value)
        if handed == value:
            result += given
        elif handed is not None:
            result.append(f"{option}={handed}")
    return result
