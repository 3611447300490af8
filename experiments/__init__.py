"""Thin launchers: parse a config, call a study's ``run``, write files."""
