"""What every launcher shares: its command line, its work dir, its end.

    LAUNCHER = launch.Launcher("stability", __doc__, "emojax.studies.stability.study:PRESETS")

    def main(argv=None):
        run = LAUNCHER.parse(argv)          # --help, bad --set and --show-config end here
        from emojax.studies.stability import study   # heavy imports after parsing
        with run:                           # claims the work dir; one-line errors; exit codes
            results = study.run(run.cfg, run.workdir)
            run.write_json("results.json", results)
        return results

:meth:`Launcher.parse` reads ``--preset``, ``--workdir``, repeated ``--set key=value``,
``--overwrite``, ``--show-config`` and the launcher's own flags in one parser, before JAX
is imported, so ``--help`` is quick. Entering the :class:`Run` claims the work dir
(:func:`emojax.workdir.claim`: same config resumes, another config is refused before
anything is written) and leaving it prints the wall time and where the results are, or
turns what went wrong into one line and an exit status: 2 for a work dir that cannot be
used, 1 for a full or read-only disk, 130 after Ctrl-C and 143 after SIGTERM (with how to
resume). The layer above the studies: nothing in the package imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import errno
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emojax import interrupt, progress

_EPILOG = """presets: smoke (plumbing only, seconds; what the tests run), tiny (a first look, minutes),
default (the study). Their values are in {presets}; every config field, with the chosen
preset's value, is printed by --show-config, and documented in the docstring of its config
class.
--set takes a dotted field path (--set world.rho=0.3); tuples as a,b,c.
A work dir remembers its config (run.json): the same command resumes, another config is
refused unless --overwrite (which deletes what the work dir holds)."""

_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


@dataclasses.dataclass(frozen=True)
class Launcher:
    """A launcher: its name (``experiments.<name>``), docstring, presets (``module:NAME``),
    its own flags (``add_flags(parser)``) and the config fields that only choose which
    parts of the study run (``parts``; see :func:`emojax.workdir.claim`)."""

    name: str
    doc: str | None
    presets: str | Mapping[str, Any]
    add_flags: Callable[[argparse.ArgumentParser], None] | None = None
    parts: tuple[str, ...] = ()

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog=f"python -m experiments.{self.name}", description=self.doc,
            epilog=_EPILOG.format(presets=self.presets if isinstance(self.presets, str) else "the launcher's PRESETS"), formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        parser.add_argument("--preset", default="default", help="smoke, tiny or default (see below)")
        parser.add_argument("--workdir", help="where the run's files go (required unless --show-config)")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config field (repeatable)")
        parser.add_argument("--overwrite", action="store_true",
                            help="if the work dir holds another run, delete it and start again")
        parser.add_argument("--show-config", action="store_true", help="print the resolved config as JSON and exit")
        if self.add_flags is not None:
            self.add_flags(parser)
        return parser

    def parse(self, argv: Sequence[str] | None = None) -> Run:
        """Parse the command line and resolve the config; exits (status 2) on a bad one."""
        parser = self.parser()
        args = parser.parse_args(argv)
        from emojax import config  # imports JAX: after --help

        presets = _presets(self.presets)
        if args.preset not in presets:
            parser.error(f"--preset {args.preset!r}: choose from {', '.join(presets)}")
        assignments = {}
        for item in args.set:
            if "=" not in item:
                parser.error(f"--set expects KEY=VALUE, got {item!r}")
            name, value = item.split("=", 1)
            assignments[name.strip()] = value.strip()
        try:
            cfg = config.override(presets[args.preset], assignments)
        except ValueError as err:
            parser.error(str(err))
        own = {"preset", "workdir", "set", "overwrite", "show_config"}
        flags = argparse.Namespace(**{n: v for n, v in vars(args).items() if n not in own})
        run = Run(self.name, args.preset, cfg, args.workdir or "", tuple(assignments), flags, args.overwrite,
                  parts=self.parts, argv=list(sys.argv if argv is None else argv))  # fmt: skip
        if args.show_config:
            print(json.dumps({"preset": args.preset, "config": config.to_dict(cfg)}, indent=2, default=str))
            raise SystemExit(0)
        if not args.workdir:
            parser.error("the following arguments are required: --workdir")
        return run


def _presets(spec: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(spec, str):
        return spec
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "PRESETS")


@dataclasses.dataclass
class Run:
    """One launch: the parsed command line and, once entered, the claimed work dir."""

    name: str
    preset: str
    cfg: Any
    workdir: str
    assigned: tuple[str, ...]
    flags: argparse.Namespace
    overwrite: bool = False
    parts: tuple[str, ...] = ()
    argv: list[str] = dataclasses.field(default_factory=list)
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # what the run reads besides its config
    resumed: bool = False
    start: float = dataclasses.field(default_factory=time.perf_counter)
    written: list[str] = dataclasses.field(default_factory=list)
    _previous_term: Any = None

    def record(self) -> dict:
        from emojax import config, workdir

        cfg = config.to_dict(self.cfg)
        return {"launcher": f"experiments.{self.name}", "preset": self.preset, "config": cfg,
                "config_hash": workdir.config_hash(cfg), "inputs": self.inputs, "argv": self.argv,
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "emojax_version": _version()}  # fmt: skip

    def path(self, filename: str) -> str:
        return os.path.join(self.workdir, filename)

    def write_json(self, filename: str, obj: Any) -> str:
        from emojax import config

        path = self.path(filename)
        config.write_json(path, obj)
        self.written.append(path)
        return path

    def write_text(self, filename: str, text: str) -> str:
        from emojax import config

        path = self.path(filename)
        config.write_text(path, text if text.endswith("\n") else text + "\n")
        self.written.append(path)
        return path

    def say(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)

    def __enter__(self) -> Run:
        from emojax import workdir

        progress.set_label(self.name)
        _compilation_cache()
        self.start = time.perf_counter()
        if _on_main_thread():
            self._previous_term = signal.signal(signal.SIGTERM, _terminated)
        try:
            found = workdir.claim(self.workdir, self.record(), overwrite=self.overwrite, parts=self.parts)
        except BaseException as err:
            self._restore()
            if isinstance(err, workdir.WorkdirError):  # __exit__ does not run when __enter__ raises
                self._refuse(err)
            raise
        self.resumed = found is not None
        if self.resumed:
            self.say(f"resuming in {self.workdir} (same config, started {found.get('started', '?')}): "
                     "finished parts are reused")  # fmt: skip
        else:
            self.say(f"preset={self.preset} -> {self.workdir}")
        return self

    def _refuse(self, err: Exception) -> None:
        """A work dir that cannot be used: its one line, exit status 2."""
        print(f"[{self.name}] {err}", file=sys.stderr)
        raise SystemExit(2) from None

    def _restore(self) -> None:
        if self._previous_term is not None:
            signal.signal(signal.SIGTERM, self._previous_term)
            self._previous_term = None

    def __exit__(self, kind, err, tb) -> bool:
        self._restore()
        from emojax import workdir

        elapsed = progress.duration(time.perf_counter() - self.start)
        if kind is None:
            where = ", ".join(os.path.basename(p) for p in self.written) or "nothing"
            self.say(f"done in {elapsed}; wrote {where} in {self.workdir}")
            return False
        again = "rerun the same command to resume"
        if issubclass(kind, workdir.WorkdirError):
            self._refuse(err)
        if issubclass(kind, interrupt.Interrupted):
            print(f"[{self.name}] {err} after {elapsed}; {again}", file=sys.stderr)
            raise SystemExit(128 + err.signum) from None
        if issubclass(kind, (KeyboardInterrupt, _Terminated)):
            signum = signal.SIGTERM if issubclass(kind, _Terminated) else signal.SIGINT
            print(f"[{self.name}] stopped by {signal.Signals(signum).name} after {elapsed}; what finished is kept "
                  f"in {self.workdir}: {again}", file=sys.stderr)  # fmt: skip
            raise SystemExit(128 + signum) from None
        if issubclass(kind, OSError) and err.errno in _DISK_ERRORS:
            print(f"[{self.name}] cannot write {err.filename or self.workdir}: {err.strerror}", file=sys.stderr)
            raise SystemExit(1) from None
        return False


def _compilation_cache() -> None:
    """JAX's persistent compilation cache (:mod:`emojax.compile_cache`), unless one is set: a
    rerun skips the minutes XLA spends on the studies' largest programs. A cached program is
    the same program, so results do not change."""
    import jax

    from emojax import compile_cache

    if not jax.config.jax_compilation_cache_dir:
        compile_cache.enable()


def input_record(path: str, filename: str = "config.json") -> dict:
    """What a run read from another run's directory: its path and the hash of its config, so
    that a rerun against a retrained input is seen as another run."""
    from emojax import workdir

    found = workdir.read_record(path, filename)
    return {"path": os.path.abspath(path), "config_hash": None if found is None else workdir.config_hash(found)}


class _Terminated(BaseException):
    """SIGTERM outside a training loop: unwinds like Ctrl-C."""


def _terminated(signum, frame):
    raise _Terminated


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _version() -> str:
    import emojax

    return emojax.__version__
