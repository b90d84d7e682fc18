"""One line on stderr for every failure of ``pgcnn`` and the example scripts, with the fix; full traceback on request.

``--traceback`` or ``PGCNN_DEBUG=1`` lets the exception through, so Python prints its traceback.
Exit status: 1 for errors, 2 for a non-finite loss (the run stopped, its good checkpoint is kept),
130 for Ctrl-C; 0 and no message when the reader of the output goes away (``pgcnn eval … | head``).
"""

from __future__ import annotations

import errno
import os
import pickle
import sys

from .data.errors import DatasetCorruptError
from .training.errors import NonFiniteLossError, RunInterrupted

_INTERNAL = ("Run again with --traceback (or PGCNN_DEBUG=1) to see the full traceback, and please report it.")


def debug_requested(argv: list[str] | None = None) -> bool:
    """Whether the full traceback is wanted: ``PGCNN_DEBUG`` set (not ``0``), or ``--traceback`` in ``argv``."""
    if os.environ.get("PGCNN_DEBUG", "") not in ("", "0"):
        return True
    return "--traceback" in (sys.argv[1:] if argv is None else argv)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _os_error(error: OSError) -> str:
    if error.strerror is None or error.errno is None:  # our own errors: the message is complete
        return _one_line(error)
    where = f": {error.filename}" if error.filename else ""
    text = f"{error.strerror}{where}"
    if error.errno == errno.ENOSPC:
        text += "; free space on the disk, then continue with --resume (the previous checkpoint is intact)"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        text += "; fix the permissions, or choose another --out-dir / --data-dir"
    return text


def describe(error: BaseException) -> tuple[str, int]:
    """The one-line message (without the program name) and the exit status for ``error``."""
    if isinstance(error, RunInterrupted):
        return _one_line(error), 130
    if isinstance(error, KeyboardInterrupt):
        return "interrupted before training started; nothing was written", 130
    if isinstance(error, NonFiniteLossError):
        return _one_line(error), 2
    if isinstance(error, OSError):
        return "error: " + _os_error(error), 1
    if isinstance(error, (ValueError, EOFError, pickle.UnpicklingError, DatasetCorruptError)):
        return "error: " + _one_line(error), 1
    return f"internal error ({type(error).__name__}: {_one_line(error)}). {_INTERNAL}", 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is no real file (tests): nothing to flush
        pass


def report_errors(prog: str, fn, *, traceback: bool | None = None) -> int:
    """Call ``fn()``; on an exception print ``prog: <one line>`` to stderr and return the exit status (0: none).

    With ``traceback`` (default: :func:`debug_requested`) the exception propagates unchanged.
    """
    if traceback is None:
        traceback = debug_requested()
    try:
        fn()
        sys.stdout.flush()  # here, not at exit: a reader gone by then is handled below
    except BrokenPipeError:
        # the reader went away (`pgcnn eval RUN --json | head`): stop quietly, as standard tools do
        _silence_stdout()
        return 0
    except (Exception, KeyboardInterrupt) as error:
        if traceback:
            raise
        message, status = describe(error)
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
        return status
    return 0
