"""Ctrl-C and SIGTERM that lose nothing: training loops stop at a step boundary, saved.

Inside :func:`deferred`, SIGINT and SIGTERM only set a flag; a training loop checks
:func:`requested` after each step (or chunk), saves a checkpoint there and raises
:class:`Interrupted`. A second signal while the first waits for the boundary interrupts at
once (``KeyboardInterrupt``), for a user who cannot wait. Outside :func:`deferred`, signals
keep their usual behaviour (the launcher turns SIGTERM into the same exit path as Ctrl-C).

Signal handlers can only be installed from the main thread; elsewhere :func:`deferred` is
a no-op and the loop runs as before.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

_pending: list[int] = []  # the signal waiting for a step boundary, if any
_depth = 0


class Interrupted(Exception):
    """Raised by a training loop at the step boundary after SIGINT or SIGTERM, once saved."""

    def __init__(self, signum: int, step: int, where: str):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}, saved in {where}")
        self.signum, self.step, self.where = signum, step, where


def requested() -> int | None:
    """The signal number waiting for a step boundary, or None."""
    return _pending[0] if _pending else None


def clear() -> None:
    _pending.clear()


def _handler(signum, frame):
    if _pending:  # a second signal: stop now
        raise KeyboardInterrupt
    _pending.append(signum)
    print(f"\n[emojax] {signal.Signals(signum).name}: stopping at the next step boundary with a checkpoint "
          "(again to stop at once)", file=sys.stderr, flush=True)  # fmt: skip


@contextlib.contextmanager
def deferred():
    """Within: SIGINT and SIGTERM wait for the loop's next :func:`requested` check."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _handler)
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        for s, h in previous.items():
            signal.signal(s, h)
        pending = requested()
        clear()
        if pending is not None and sys.exc_info()[0] is None:
            # The loop ended (its last step) before checking: the run is complete and saved,
            # but the user asked to stop; let the caller stop too.
            signal.raise_signal(pending)
