"""Every area's settings together, for the CLI: each area's model lives beside its component
(city/settings.py, sinks/settings.py, streams/settings.py, dashboards/settings.py).

A bad setting is a SettingsError: one line naming the variable and the rule it breaks, never
the value (it may be a secret), which the CLI prints before it exits with code 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsError as SourceError

from city.exceptions import VtopsError
from city.settings import ENV_FILE, ENV_PREFIX, KafkaSettings
from dashboards.settings import GrafanaSettings
from sinks.settings import StorageSettings
from streams.settings import StreamSettings

MASK = "**********"
# Secrets that are URLs: shown with only their password masked, so the host can be checked.
SECRET_URLS = frozenset({"clickhouse_url"})


class SettingsError(VtopsError):
    """A setting is malformed or out of range; the CLI exits with code 2."""


def _variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _named(names: Iterable[str | None], variable: str) -> list[str]:
    """The names among `names` that set `variable`: pydantic-settings ignores case."""
    return sorted(name for name in names if name and name.upper() == variable)


def source_of(variable: str, dotenv: dict[str, str | None]) -> str:
    """Where a variable's value comes from, as pydantic-settings reads it: the environment
    before the .env file, any case; a name not in upper case is quoted as it was written."""
    for where, names in (("environment", os.environ), (ENV_FILE, dotenv)):
        found = _named(names, variable)
        if found:
            spelled = [name for name in found if name != variable]
            return f"{where}, as {', '.join(found)}" if spelled else where
    return "default"


def _dotenv() -> dict[str, str | None]:
    return dotenv_values(ENV_FILE) if Path(ENV_FILE).is_file() else {}


def _one_line(error: ValidationError | SourceError) -> str:
    """Each broken rule as `VARIABLE (source): rule`, joined on one line; never the value."""
    dotenv = _dotenv()
    if isinstance(error, SourceError):
        # pydantic-settings names the field in its message, e.g. for a value that is not JSON.
        return f"settings: {error}"
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        fields = [str(part) for part in detail["loc"] if isinstance(part, str)]
        variable = _variable(fields[0]) if fields else "settings"
        rule = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{variable} ({source_of(variable, dotenv)}): {rule}")
    return "; ".join(problems)


def masked_url(url: str) -> str:
    """`url` with only its password masked; wholly masked when it cannot be read as a URL
    (then where the password ends is unknown: a '/' in it moves the host into the path)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.hostname or "@" in url.split(parts.netloc, 1)[1]:
        return MASK
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:{MASK}"
    shown = f"{parts.scheme}://{userinfo}{at}{hostport}{parts.path}"
    # A query may carry credentials too (`?password=`): its text is not shown.
    return f"{shown}?{MASK}" if parts.query else shown


def shown_value(field: str, value: Any) -> Any:
    """A setting as JSON shows it: numbers, booleans and null as such, paths as text, secrets
    masked (a URL but for its password)."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return masked_url(secret) if field in SECRET_URLS else MASK
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


AREAS: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    StorageSettings,
    StreamSettings,
    GrafanaSettings,
)


def _every_problem() -> str:
    """Every area's broken rules, so that one run names every bad variable."""
    problems = []
    for model in AREAS:
        try:
            model()
        except (ValidationError, SourceError) as error:
            problems.append(_one_line(error))
    return "; ".join(problems)


class Settings:
    """All areas together; each area is read once per process."""

    def __init__(self) -> None:
        try:
            self.kafka = KafkaSettings()
            self.storage = StorageSettings()
            self.stream = StreamSettings()
            self.grafana = GrafanaSettings()
        except (ValidationError, SourceError):
            raise SettingsError(_every_problem()) from None

    def areas(self) -> dict[str, BaseSettings]:
        return {
            "kafka": self.kafka,
            "storage": self.storage,
            "stream": self.stream,
            "grafana": self.grafana,
        }

    def described(self) -> list[tuple[str, Any, str]]:
        """(variable, shown value, source) for every setting; secrets are masked."""
        dotenv = _dotenv()
        rows: list[tuple[str, Any, str]] = []
        for area in self.areas().values():
            for name in type(area).model_fields:
                variable = _variable(name)
                shown = shown_value(name, getattr(area, name))
                rows.append((variable, shown, source_of(variable, dotenv)))
        return rows


@cache
def get_settings() -> Settings:
    return Settings()
