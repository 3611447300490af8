"""Progress a user can read: what a run is doing, how far, how long it has left.

One helper for every launcher and study. :func:`phase` opens a phase (``"training the
estimator"``, 40 steps); ``update`` advances it. On a terminal it is a tqdm bar; when
stdout is not a terminal (a log file, CI, nohup) it is plain lines, one when the phase
starts, one at most every ``interval`` seconds while it advances, one when it ends, so logs
stay readable. Either way a heartbeat says the phase is still running at least once a
minute when nothing advances (a long XLA compile), so a slow run never looks hung.

    with progress.phase("measuring conditions", total=12) as p:
        for cell in cells:
            ...
            p.update()

``EMOJAX_PROGRESS=plain|bar|off`` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import threading
import time

_label = ["emojax"]
HEARTBEAT_S = 60.0


def set_label(name: str) -> None:
    """The prefix of plain lines (the launcher's name)."""
    _label[0] = name


def label() -> str:
    return _label[0]


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def mode() -> str:
    chosen = os.environ.get("EMOJAX_PROGRESS", "")
    if chosen in ("plain", "bar", "off"):
        return chosen
    return "bar" if sys.stdout.isatty() else "plain"


class Phase:
    """One phase of a run; see the module docstring. Thread-safe updates from the caller."""

    def __init__(self, name: str, total: int | None = None, *, unit: str = "", interval: float = 30.0,
                 enabled: bool = True, initial: int = 0):
        self.name, self.total, self.unit, self.interval = name, total, unit, interval
        self.done, self.start, self._last = initial, time.perf_counter(), time.perf_counter()
        self._initial = initial
        self._mode = mode() if enabled else "off"
        self._bar = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._postfix = ""
        if self._mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=name, unit=unit or "it", leave=False, file=sys.stdout)
        elif self._mode == "plain":
            self._print(f"{name}: started" + (f" ({initial}/{total} done before)" if initial else ""))
        if self._mode != "off":
            self._beat = threading.Thread(target=self._heartbeat, daemon=True)
            self._beat.start()

    def _print(self, text: str) -> None:
        print(f"[{_label[0]}] {text}", flush=True)

    def _status(self) -> str:
        elapsed = time.perf_counter() - self.start
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}" if self.done else ""
        parts = [f"{count} {self.unit}".strip()] if count else []  # a phase with nothing to count: time only
        parts.append(f"{duration(elapsed)} elapsed")
        if self.total and self._initial < self.done < self.total:
            rate = (self.done - self._initial) / elapsed
            parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        if (memory := _memory()) is not None:
            parts.append(memory)
        return ", ".join(parts) + (f" ({self._postfix})" if self._postfix else "")

    def update(self, n: int = 1, **postfix) -> None:
        with self._lock:
            self.done += n
            if postfix:
                self._postfix = ", ".join(f"{name}={_fmt(value)}" for name, value in postfix.items())
            if self._bar is not None:
                self._bar.update(n)
                if postfix:
                    self._bar.set_postfix_str(self._postfix, refresh=False)
            elif self._mode == "plain" and time.perf_counter() - self._last >= self.interval:
                self._print(f"{self.name}: {self._status()}")
                self._last = time.perf_counter()

    def _heartbeat(self) -> None:
        while not self._stop.wait(5.0):
            with self._lock:
                if self._bar is not None:
                    self._bar.refresh()  # the elapsed time ticks on
                elif time.perf_counter() - self._last >= HEARTBEAT_S:
                    self._print(f"{self.name}: still running, {self._status()}")
                    self._last = time.perf_counter()

    def close(self, ended: str = "done") -> None:
        self._stop.set()
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self._mode == "plain":
                self._print(f"{self.name}: {ended}, {self._status()}")
            self._mode = "off"

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close("done" if kind is None else "stopped")


def phase(name: str, total: int | None = None, **kwargs) -> Phase:
    """Open a phase (use as a context manager); see :class:`Phase`."""
    return Phase(name, total, **kwargs)


def _memory() -> str | None:
    """``memory 1.2 GB (peak 3.4 GB)``: this process's resident memory now and at its
    peak, so a user sees which phase needs how much (None where /proc is absent)."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
        now, peak = (int(fields[name].split()[0]) / 2**20 for name in ("VmRSS", "VmHWM"))
    except (OSError, KeyError, ValueError):
        return None
    return f"memory {now:.1f} GB (peak {peak:.1f} GB)"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
