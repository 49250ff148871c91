"""Helpers shared by CLI commands: errors, JSON output, loading files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from jobgov.configfile import ConfigError, load_plan_config
from jobgov.domain.config import PlanConfig

#: Exit status for bad input (config, request, arguments): the same as Click's usage errors.
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    typer.echo(f"jobgov: {message}", err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """Print one JSON document to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def load_config_or_exit(path: Path | None) -> PlanConfig:
    """Load the plan config, turning a :class:`ConfigError` into exit status 2."""
    try:
        return load_plan_config(path)
    except ConfigError as exc:
        fail(str(exc))


def read_text_arg(path: str) -> tuple[str, str]:
    """Read a file argument (``-`` for stdin); returns (source name, text)."""
    if path == "-":
        return "<stdin>", sys.stdin.read()
    try:
        return path, Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read: {exc}")
