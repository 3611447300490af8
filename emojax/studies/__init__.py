"""Studies: each is ``run(config) -> results`` (a JSON-ready dict), presets, and figures.

Launchers in ``experiments/`` only parse a config, call ``run`` and write files; notebooks
call the same functions.
"""
