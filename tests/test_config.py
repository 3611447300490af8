import dataclasses
import json
import os

import jax
import pytest

from emojax import config
from emojax.world import affect, items, raters


def test_override_nested_fields():
    cfg = config.override(items.ItemsConfig(), {"raters.noise_scale": "2.5", "affect.max_active": "3"})
    assert cfg.raters.noise_scale == 2.5 and cfg.affect.max_active == 3


@pytest.mark.parametrize(
    "assignment, message",
    [({"raters.noise": "1"}, "unknown config key 'raters.noise'"),
     ({"raters.num_raters": "four"}, "expected a value of type int"),
     ({"raters": "1"}, "is a nested config"),
     ({"raters.noise_scale": "-1"}, "RaterConfig.noise_scale must be >= 0")],
)  # fmt: skip
def test_override_errors_name_the_field(assignment, message):
    with pytest.raises(ValueError, match=message):
        config.override(items.ItemsConfig(), assignment)


def test_configs_are_frozen_pytrees_with_static_shapes():
    cfg = items.ItemsConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.raters = None
    leaves = jax.tree.leaves(cfg)
    assert all(isinstance(x, float) for x in leaves)
    assert cfg.raters.noise_scale in leaves and cfg.raters.num_raters not in leaves[:0]
    # Ints that fix shapes are static: changing one changes the tree structure.
    other = dataclasses.replace(cfg, raters=raters.RaterConfig(num_raters=5))
    assert jax.tree.structure(other) != jax.tree.structure(cfg)


def test_validation_lets_tracers_through():
    @jax.jit
    def f(cfg):
        return cfg.blend_temperature * 2

    assert float(f(affect.AffectConfig(blend_temperature=0.5))) == 1.0


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "r.json"
    config.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        config.write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_launcher_reports_bad_keys(capsys):
    from emojax import launch

    launcher = launch.Launcher("x", None, {"smoke": items.ItemsConfig()})
    with pytest.raises(SystemExit):
        launcher.parse(["--preset", "smoke", "--workdir", "x", "--set", "raters.nosie_scale=1"])
    err = capsys.readouterr().err
    assert "unknown config key 'raters.nosie_scale'" in err and "'noise_scale'" in err  # the valid fields, listed
    run = launcher.parse(["--preset", "smoke", "--workdir", "w", "--set", "raters.num_raters=6"])
    assert (run.preset, run.cfg.raters.num_raters, run.workdir, run.assigned) == ("smoke", 6, "w", ("raters.num_raters",))


def test_written_files_are_readable_by_others(tmp_path):
    """Atomic writes keep the mode open() would give (0644 under umask 022), not mkstemp's 0600."""
    config.write_json(tmp_path / "r.json", {"a": 1})
    config.write_text(tmp_path / "s.md", "hello")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("r.json", "s.md"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "s.md").read_text() == "hello"
