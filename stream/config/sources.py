"""Where settings come from: ``ENGAGEMENT_*`` variables first, then an optional YAML file.

``ENGAGEMENT_SETTINGS_FILE`` names a YAML mapping whose keys are the variable names
without the prefix, in lower case (``kafka_sasl_username: scorer``); a variable set in the
environment wins over the file. A secret ``X`` may instead be given as ``X_FILE``, the path
of a file holding it (a mounted Kubernetes secret); the file's content without a trailing
newline is the secret. Errors name the variable (or the file and key) and never contain a
secret value.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from stream.config.durations import parse_duration_ms
from stream.config.errors import ConfigError
from stream.config.secret import Secret

__all__ = ["ENVIRONMENT", "ENV_PREFIX", "SETTINGS_FILE", "Found", "SettingsReader"]

ENV_PREFIX = "ENGAGEMENT_"
ENVIRONMENT = "environment"
SETTINGS_FILE = "SETTINGS_FILE"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Found:
    """A raw setting value and where it was found (for error messages)."""

    source: str
    key: str
    value: str


class SettingsReader:
    """Reads named settings from the environment, falling back to the settings file."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.file_path = env.get(ENV_PREFIX + SETTINGS_FILE) or ""
        self.file_values = _load_file(self.file_path) if self.file_path else {}
        self.asked: set[str] = set()

    def find(self, name: str) -> Found | None:
        """The raw value of setting ``name`` (e.g. ``KAFKA_BOOTSTRAP``), or None if unset."""
        self.asked.add(name)
        key = ENV_PREFIX + name
        if self.env.get(key):
            return Found(ENVIRONMENT, key, self.env[key])
        if self.file_values.get(name.lower()):
            return Found(self.file_path, name.lower(), self.file_values[name.lower()])
        return None

    def error(self, name: str, problem: str) -> ConfigError:
        """A ConfigError naming where setting ``name`` was given (or its variable)."""
        found = self.find(name) or self.find(f"{name}_FILE")
        if found is None:
            return ConfigError(ENVIRONMENT, ENV_PREFIX + name, problem)
        return ConfigError(found.source, found.key, problem)

    def parsed(self, name: str, default: _T, parse: Callable[[str], _T]) -> _T:
        found = self.find(name)
        if found is None:
            return default
        try:
            return parse(found.value)
        except ValueError as exc:
            raise ConfigError(found.source, found.key, str(exc)) from None

    def text(self, name: str, default: str) -> str:
        return self.parsed(name, default, str)

    def optional(self, name: str) -> str | None:
        found = self.find(name)
        return None if found is None else found.value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number") from None
            if not low <= value <= high:
                raise ValueError(f"{value} is outside {low}..{high}")
            return value

        return self.parsed(name, default, parse)

    def duration(self, name: str, default: int) -> int:
        return self.parsed(name, default, parse_duration_ms)

    def choice(self, name: str, default: str, allowed: set[str], *, upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in allowed:
                raise ValueError(f"{raw!r} is not one of {sorted(allowed)}")
            return value

        return self.parsed(name, default, parse)

    def path(self, name: str) -> str | None:
        """An optional path that must name a readable file."""
        found = self.find(name)
        if found is None:
            return None
        if not Path(found.value).is_file():
            raise ConfigError(found.source, found.key, f"file {found.value} does not exist")
        if not os.access(found.value, os.R_OK):
            raise ConfigError(found.source, found.key, f"file {found.value} is not readable")
        return found.value

    def secret(self, name: str) -> Secret | None:
        """Secret ``name`` given directly or as ``name_FILE``; environment first, then file."""
        self.asked.update({name, f"{name}_FILE"})
        origins = [(ENVIRONMENT, self.env, ENV_PREFIX + name, f"{ENV_PREFIX}{name}_FILE")]
        if self.file_path:
            origins.append((self.file_path, self.file_values, name.lower(), f"{name.lower()}_file"))
        for source, values, direct, via_file in origins:
            if values.get(direct) and values.get(via_file):
                raise ConfigError(source, direct, f"set either {direct} or {via_file}, not both")
            if values.get(direct):
                return Secret(values[direct])
            if values.get(via_file):
                return Secret(_read_secret(source, via_file, values[via_file]))
        return None

    def unknown_variables(self) -> list[str]:
        """``ENGAGEMENT_*`` variables of the environment that name no setting, each with a hint."""
        known = {ENV_PREFIX + name for name in self.asked} | {ENV_PREFIX + SETTINGS_FILE}
        notes = []
        for variable in sorted(v for v in self.env if v.startswith(ENV_PREFIX)):
            if variable in known:
                continue
            close = difflib.get_close_matches(variable, sorted(known), n=1, cutoff=0.8)
            hint = f" (did you mean {close[0]}?)" if close else ""
            notes.append(f"warning: {variable} is not a setting and is ignored{hint}")
        return notes

    def check_file_keys(self) -> None:
        """Every key of the settings file must be a known setting."""
        for key in sorted(self.file_values):
            if key.upper() not in self.asked:
                raise ConfigError(
                    self.file_path,
                    key,
                    "unknown setting (keys are the ENGAGEMENT_* names without the prefix, "
                    "in lower case)",
                )


def _read_secret(source: str, key: str, path: str) -> str:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(source, key, f"cannot read {path}: {reason}") from None
    value = text.rstrip("\r\n")
    if not value:
        raise ConfigError(source, key, f"{path} is empty")
    return value


def _load_file(path: str) -> dict[str, str]:
    key = ENV_PREFIX + SETTINGS_FILE
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(ENVIRONMENT, key, f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The parser's own message may quote the offending line, which can hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, "(file)", f"not valid YAML{where}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(path, "(file)", "must be a mapping of setting names to values")
    values: dict[str, str] = {}
    for name, value in doc.items():
        lower = str(name).lower()
        if value is None:
            continue
        if isinstance(value, bool):
            values[lower] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[lower] = str(value)
        else:
            raise ConfigError(path, lower, "must be a single value, not a list or mapping")
    return values
