"""The smoke-results check itself: it must see a changed result and ignore only timings and paths."""

from __future__ import annotations

from emojax.bench import smoke_results


def test_normalise_drops_timings_and_run_paths_only():
    raw = {"seconds": {"total": 3.1}, "step_time_s_median": 0.2, "wall_s": 9, "estimator": "/tmp/r/estimator",
           "reward": [0.5, 0.25], "preset": "smoke"}
    assert smoke_results.normalise(raw, ("/tmp/r",)) == {"estimator": "<run>/estimator", "reward": [0.5, 0.25],
                                                          "preset": "smoke"}


def test_differences_sees_every_kind_of_change():
    old = {"a": 1.0, "b": [1, 2], "c": {"d": "x"}, "nan": float("nan")}
    assert smoke_results.differences(old, old) == []
    changed = {"a": 1.0 + 1e-12, "b": [1, 2, 3], "c": {"d": "y"}, "nan": float("nan"), "new": 1}
    found = smoke_results.differences(old, changed)
    assert found == ["/new: only in new", "/a: 1.0 -> 1.000000000001", "/b: length 2 -> 3", "/c/d: 'x' -> 'y'"]
    assert smoke_results.differences({"a": 1.0}, {"a": 1.0 + 1e-12}, rtol=1e-9) == []
    assert smoke_results.differences({"a": True}, {"a": 1}) == ["/a: True -> 1"]
