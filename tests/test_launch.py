"""Work dirs that remember what made them, one-line errors, interrupts that lose nothing,
progress lines, and the launchers' command lines (issue 15)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from emojax import interrupt, launch, progress, workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHERS = ("label_vs_intensity", "stability", "context_gap", "grpo_tasks", "train_estimator", "empathy", "text_grpo")


# --- the work dir's record ---------------------------------------------------------------


def _record(**config):
    return {"launcher": "experiments.x", "preset": "smoke", "config": {"seeds": 3, "world": {"rho": 0.5}, **config},
            "inputs": {}, "started": "now"}  # fmt: skip


def test_claim_fresh_same_other_and_overwrite(tmp_path):
    path = str(tmp_path / "run")
    assert workdir.claim(path, _record()) is None
    assert json.load(open(os.path.join(path, "run.json")))["config"]["seeds"] == 3
    open(os.path.join(path, "results.json"), "w").write("{}")
    again = dict(_record(), started="later", preset="tiny")  # when and by which preset name: the same run
    assert workdir.claim(path, again)["started"] == "now"
    with pytest.raises(workdir.WorkdirError, match=r"holds another run \(config\.world\.rho: 0\.5 -> 0\.3\).*--overwrite"):
        workdir.claim(path, _record(world={"rho": 0.3}))
    assert os.path.exists(os.path.join(path, "results.json"))  # refused before writing anything
    assert workdir.claim(path, _record(world={"rho": 0.3}), overwrite=True) is None
    assert os.listdir(path) == ["run.json"]


def test_claim_gathers_parts_and_still_refuses_other_configs(tmp_path):
    """A field named in ``parts`` (the empathy table's rows) does not make another run: the
    work dir gathers parts, and its record becomes the newer launch's."""
    path = str(tmp_path / "table")
    assert workdir.claim(path, _record(rows=["a"]), parts=("rows",)) is None
    open(os.path.join(path, "a.json"), "w").write("{}")
    assert workdir.claim(path, _record(rows=["b", "a"]), parts=("rows",)) is not None
    assert json.load(open(os.path.join(path, "run.json")))["config"]["rows"] == ["b", "a"]
    with pytest.raises(workdir.WorkdirError, match="rows"):
        workdir.claim(path, _record(rows=["c"]))  # without parts, rows are the config like any field
    with pytest.raises(workdir.WorkdirError, match="rho"):
        workdir.claim(path, _record(rows=["c"], world={"rho": 0.3}), parts=("rows",))
    assert os.path.exists(os.path.join(path, "a.json"))


def test_claim_refuses_file_foreign_dir_and_read_only(tmp_path, monkeypatch):
    file = tmp_path / "afile"
    file.write_text("x")
    with pytest.raises(workdir.WorkdirError, match="is a file, not a directory"):
        workdir.claim(str(file), _record())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(workdir.WorkdirError, match="not empty and has no run.json"):
        workdir.claim(str(foreign), _record())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root ignores permission bits: say what a user would see
        monkeypatch.setattr(workdir.os, "access", lambda p, mode: os.path.abspath(p) != str(locked))
    with pytest.raises(workdir.WorkdirError, match="is not writable"):
        workdir.claim(str(locked), _record())


def test_differences_name_nested_fields():
    assert workdir.differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 2]}, "d": 0}) == [
        "a.b: 1 -> 2", "d: (absent) -> 0"]
    assert workdir.config_hash({"a": 1, "b": 2}) == workdir.config_hash({"b": 2, "a": 1})


def test_check_same_guards_a_run_directory(tmp_path):
    workdir.check_same(str(tmp_path), {"train": {"steps": 3}})  # nothing there yet: fine
    (tmp_path / "config.json").write_text(json.dumps({"train": {"steps": 3}}))
    workdir.check_same(str(tmp_path), {"train": {"steps": 3}})
    with pytest.raises(workdir.WorkdirError, match=r"train\.steps: 3 -> 4"):
        workdir.check_same(str(tmp_path), {"train": {"steps": 4}})


# --- the launchers' command lines --------------------------------------------------------


def _launcher(name):
    import importlib

    return importlib.import_module(f"experiments.{name}")


@pytest.mark.parametrize("name", LAUNCHERS)
def test_help_lists_flags_and_presets_without_jax(name):
    code = (f"import sys\nimport experiments.{name} as m\n"
            "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('JAX_IMPORTED' if 'jax' in sys.modules else 'NO_JAX')")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().endswith("NO_JAX")
    for flag in ("--preset", "--workdir", "--set", "--overwrite", "--show-config"):
        assert flag in out
    assert "smoke" in out and "tiny" in out and "default" in out and "--show-config" in out


def test_bad_set_names_the_field_and_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        _launcher("stability").main(["--preset", "smoke", "--workdir", "/nonexistent", "--set", "world.raters.noise_scale=1.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'world.raters.noise_scale'" in err and "has no field 'raters'" in err and "'rho'" in err


def _readme_set_examples() -> list[str]:
    """Every ``--set KEY=VALUE`` in the README's code spans (placeholders left out,
    ``a|b`` alternatives each)."""
    import shlex

    text = open(os.path.join(ROOT, "README.md")).read()
    found = []
    for span in re.findall(r"`([^`]*--set[^`]*)`", text, flags=re.S):
        words = shlex.split(span.replace("\\\n", " "))
        for i, word in enumerate(words[:-1]):
            if word == "--set":
                name, _, value = words[i + 1].partition("=")
                if value in ("...", "N", "PATH", "value") or not value:
                    continue
                found += [f"{name}={v}" for v in value.split("|")] if "|" in value and "(" not in value else [words[i + 1]]
    return found


def test_every_readme_set_example_parses():
    """Each ``--set`` example in the README is accepted by the smoke preset of a launcher."""
    from emojax import config

    presets = [launch._presets(_launcher(name).LAUNCHER.presets)["smoke"] for name in LAUNCHERS]
    examples = _readme_set_examples()
    assert len(examples) >= 15, examples
    rejected = []
    for example in examples:
        name, value = example.split("=", 1)
        errors = []
        for cfg in presets:
            try:
                config.override(cfg, {name: value})
                break
            except ValueError as err:
                errors.append(str(err))
        else:
            rejected.append((example, errors[0]))
    assert rejected == []


def test_other_preset_in_the_same_work_dir_is_refused_before_any_work(tmp_path, capsys):
    mod = _launcher("train_estimator")
    run = mod.LAUNCHER.parse(["--preset", "smoke", "--workdir", str(tmp_path)])
    with run:
        pass
    with pytest.raises(SystemExit) as exit_:
        mod.main(["--preset", "tiny", "--workdir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"work dir {tmp_path} holds another run" in err and "--overwrite" in err
    assert sorted(os.listdir(tmp_path)) == ["run.json"]


def test_other_task_in_the_same_work_dir_is_refused(tmp_path, capsys):
    mod = _launcher("grpo_tasks")
    with mod.LAUNCHER.parse(["--preset", "smoke", "--workdir", str(tmp_path), "--set", "task=reverse"]):
        pass
    with pytest.raises(SystemExit) as exit_:
        mod.main(["--preset", "smoke", "--workdir", str(tmp_path), "--set", "task=need_reply"])
    assert exit_.value.code == 2 and "config.task: 'reverse' -> 'need_reply'" in capsys.readouterr().err


def test_file_as_work_dir_is_one_line(tmp_path, capsys):
    file = tmp_path / "results"
    file.write_text("")
    with pytest.raises(SystemExit) as exit_:
        _launcher("stability").main(["--preset", "smoke", "--workdir", str(file)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err == f"[stability] work dir {file} is a file, not a directory: choose another --workdir"


def test_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    from emojax import config
    from emojax.world import items

    run = launch.Launcher("demo", None, {"smoke": items.ItemsConfig()}).parse(
        ["--preset", "smoke", "--workdir", str(tmp_path / "w")])
    target = str(tmp_path / "w" / "results.json")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)

    with pytest.raises(SystemExit) as exit_, run:
        monkeypatch.setattr(config.os, "replace", full)
        run.write_json("results.json", {"a": 1})
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == f"[demo] cannot write {target}: No space left on device"
    assert not os.path.exists(target) and [p for p in os.listdir(tmp_path / "w") if p.endswith(".tmp")] == []


def test_stale_estimator_is_never_reused(tmp_path):
    """A work dir's estimator trained under another config is refused, not relabelled."""
    import dataclasses

    from emojax.studies.stability import study
    from emojax.train import config as train_config

    other = dataclasses.replace(train_config.PRESETS["smoke"], baselines=False, steps=7)
    est_dir = tmp_path / "estimator"
    est_dir.mkdir()
    (est_dir / "config.json").write_text(json.dumps({"train": dataclasses.asdict(other)}))
    (est_dir / "eval.json").write_text("{}")
    cfg = dataclasses.replace(study.PRESETS["smoke"], estimator="smoke")
    with pytest.raises(workdir.WorkdirError, match=r"holds a run of another config \(train\.steps: 7 -> "):
        study.load_or_train_estimator(cfg, str(tmp_path))


# --- interrupts --------------------------------------------------------------------------


def _interrupt_at(monkeypatch, step_to_stop):
    """Make the estimator's training loop receive SIGINT while it runs step ``step_to_stop``
    (what Ctrl-C does: the handler runs between two steps' Python code)."""
    from emojax.train import loop

    make_step = loop.make_step

    def patched(*args, **kwargs):
        step = make_step(*args, **kwargs)
        calls = [0]

        def wrapped(state, batch):
            calls[0] += 1
            if calls[0] == step_to_stop:
                interrupt._handler(signal.SIGINT, None)
            return step(state, batch)

        return wrapped

    monkeypatch.setattr(loop, "make_step", patched)


def test_ctrl_c_saves_at_the_step_boundary_and_the_rerun_finishes_equal(tmp_path, monkeypatch, capsys):
    mod = _launcher("train_estimator")
    argv = ["--preset", "smoke", "--set", f"data_dir={tmp_path / 'data'}", "--set", "baselines=false"]
    whole = mod.main(argv + ["--workdir", str(tmp_path / "whole")])

    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as m:
        _interrupt_at(m, 13)
        with pytest.raises(SystemExit) as exit_:
            mod.main(argv + ["--workdir", str(tmp_path / "cut")])
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert "stopped by SIGINT at step 13" in err and "rerun the same command to resume" in err
    assert interrupt.requested() is None and signal.getsignal(signal.SIGINT) is handler  # restored

    # A hard kill (no chance to save) after logging step 20 but before its checkpoint, with
    # a torn last line: the resumed run logs 20 again, once, and drops the torn line.
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 20, "loss": -1.0}) + "\n" + '{"step": 2')
    resumed = mod.main(argv + ["--workdir", str(tmp_path / "cut")])
    assert "resuming from step 13 of 40" in capsys.readouterr().out
    rows = [json.loads(line) for line in open(tmp_path / "cut" / "metrics.jsonl")]
    steps = [row["step"] for row in rows if "loss" in row]
    assert len(steps) == len(set(steps)) and 20 in steps and -1.0 not in [row["loss"] for row in rows if "loss" in row]
    from emojax.train.evaluate import MAIN_KEYS

    for key in MAIN_KEYS:
        assert resumed[key] == whole[key], key


def test_sigterm_outside_a_loop_exits_143(tmp_path):
    code = ("import os, signal, sys\nsys.argv = ['x']\nfrom emojax import launch\n"
            "L = launch.Launcher('demo', None, 'emojax.studies.stability.study:PRESETS')\n"
            f"run = L.parse(['--preset', 'smoke', '--workdir', {str(tmp_path)!r}])\n"
            "with run:\n    os.kill(os.getpid(), signal.SIGTERM)\n    import time; time.sleep(5)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 143, proc.stderr
    assert "stopped by SIGTERM" in proc.stderr and "rerun the same command to resume" in proc.stderr


# --- progress ------------------------------------------------------------------------------


def test_plain_progress_lines_and_heartbeat(monkeypatch, capsys):
    monkeypatch.setenv("EMOJAX_PROGRESS", "plain")
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    progress.set_label("demo")
    with progress.phase("waiting", total=4, unit="step", interval=0.0) as p:
        p.update(loss=0.5)
        time.sleep(5.5)  # no update: the heartbeat speaks (it checks every 5 s)
        p.update(3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[demo] waiting: started"
    assert out[1].startswith("[demo] waiting: 1/4 step, ") and "ETA" in out[1] and "loss=0.5" in out[1]
    assert any("still running" in line for line in out)
    assert out[-1].startswith("[demo] waiting: done, 4/4 step")


def test_duration_reads_well():
    assert [progress.duration(s) for s in (4.2, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]
