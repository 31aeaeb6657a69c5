"""The tier and maintenance configuration as a TOML file (`engram config show|set`).

Keys are dotted (`short_term.ttl_hours`); a file holds only the values that differ from the
defaults in `tiers.Policy`, so a newer Engram's better defaults reach old stores.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from engram.errors import InvalidInput
from engram.lifecycle.tiers import Policy
from engram.plm.settings import Settings  # Policy plus the train.*, state.* and plm.* keys

FILE_NAME = "engram.toml"


def path_for(store: str | Path) -> Path:
    """Where a store's configuration lives: beside its data, or ENGRAM_CONFIG's file (or
    ./engram.toml) for a store reached by URL."""
    if str(store).startswith(("postgres://", "postgresql://")):
        return Path(os.environ.get("ENGRAM_CONFIG", FILE_NAME))
    return Path(os.environ.get("ENGRAM_CONFIG") or Path(store) / FILE_NAME)


def load(path: Path) -> Policy:
    """The policy a TOML file sets (defaults where it is silent or missing)."""
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("config", f"{path} is not valid TOML ({exc})",
                           f"fix or delete {path}") from None
    values = {}
    for key, value in _flatten(data).items():
        values[_field(key)] = _typed(key, value)
    return Settings(**values)


def save(path: Path, policy: Policy) -> None:
    """Write the values of `policy` that differ from the defaults."""
    nested: dict[str, Any] = {}
    default = Settings()
    for key, name in Settings.keys().items():
        value = getattr(policy, name, getattr(default, name))
        if value != getattr(default, name):
            section, _, leaf = key.partition(".")
            nested.setdefault(section, {})[leaf] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(nested), encoding="utf-8")
    tmp.replace(path)


def set_value(policy: Policy, key: str, text: str) -> Policy:
    """`policy` with one setting changed, `text` parsed as the setting's type."""
    return replace(Settings(**asdict(policy)), **{_field(key): _typed(key, _parse(text))})


def show(policy: Policy) -> list[tuple[str, Any, str]]:
    """(key, value, what it does) for every setting, in declaration order."""
    docs = {f.name: f.metadata["doc"] for f in fields(Settings)}
    values = asdict(Settings(**asdict(policy)))
    return [(key, values[name], docs[name]) for key, name in Settings.keys().items()]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _field(key: str) -> str:
    keys = Settings.keys()
    if key not in keys:
        raise InvalidInput(key, "is not a setting", f"use one of: {', '.join(keys)}")
    return keys[key]


def _parse(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def _typed(key: str, value: Any) -> Any:
    """`value` checked against the type of the setting's default."""
    default = getattr(Settings(), _field(key))
    if isinstance(default, str):
        if isinstance(value, str) and value.strip():
            return value.strip()
    elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        if isinstance(default, float):
            return float(value)
        if float(value).is_integer():
            return int(value)
    kind = type(default).__name__
    raise InvalidInput(key, f"{value!r} is not a valid {kind}",
                       f"give a non-negative {kind}, e.g. {key} = {default!r}")
