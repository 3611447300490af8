"""The persistent compilation cache is size-limited (JAX then locks every read and write, so
processes sharing it never read a half-written entry) and adopts entries an unlimited cache
wrote."""

import jax

from emojax import compile_cache


def test_enable_limits_the_cache_and_stamps_old_entries(tmp_path, monkeypatch):
    old = (tmp_path / "jit_f-abc-cache", tmp_path / "jit_g-def-cache")
    for f in old:
        f.write_bytes(b"x")
    (tmp_path / "jit_g-def-atime").write_bytes((7).to_bytes(8, "little"))
    saved = {k: getattr(jax.config, k) for k in ("jax_compilation_cache_dir", "jax_compilation_cache_max_size",
                                                 "jax_persistent_cache_min_compile_time_secs")}  # fmt: skip
    monkeypatch.setenv("EMOJAX_JAX_CACHE", str(tmp_path))
    try:
        assert compile_cache.enable(min_compile_secs=2.0, max_bytes=1234) == str(tmp_path)
        assert jax.config.jax_compilation_cache_dir == str(tmp_path)
        assert jax.config.jax_compilation_cache_max_size == 1234
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.0
    finally:
        for k, v in saved.items():
            jax.config.update(k, v)
    assert int.from_bytes((tmp_path / "jit_f-abc-atime").read_bytes(), "little") > 7  # stamped now
    assert int.from_bytes((tmp_path / "jit_g-def-atime").read_bytes(), "little") == 7  # left as it was
