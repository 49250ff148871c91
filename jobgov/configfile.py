"""Loading a plan config file: YAML in, :class:`~jobgov.domain.config.PlanConfig` out.

Every problem is reported as ``FILE:LINE: FIELD: message`` (bad YAML, unknown
keys, unknown actions or categories, wrong types), so a person can fix the
file without guessing. The schema itself is pure data in
:mod:`jobgov.domain.config`; only this module reads files and YAML.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, RootModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from jobgov.domain.config import PlanConfig


class ConfigError(ValueError):
    """A plan config that cannot be used; the message names file, line and field."""


def _line_of(document: Any, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the YAML document."""
    node, line = document, None
    for key in loc:
        lc = getattr(node, "lc", None)
        if lc is None:
            break
        if isinstance(node, dict) and key in node:
            line = lc.value(key)[0] if not hasattr(node[key], "lc") else lc.key(key)[0]
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            line = lc.item(key)[0]
            node = node[key]
        # Other loc parts are pydantic's own (validator or union tags): skip them.
    return None if line is None else line + 1


def _format_errors(source: str, document: Any, error: ValidationError) -> str:
    lines: list[str] = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if isinstance(p, int | str)]
        line = _line_of(document, loc) if document is not None else None
        where = f"{source}:{line}" if line else source
        field = ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {field}: {message}")
    return "\n".join(lines)


def parse_plan_config(text: str, source: str = "<config>") -> PlanConfig:
    """Parse and validate plan config YAML; raises :class:`ConfigError` naming line and field."""
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem or exc}") from None
    except YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"{type(document).__name__} {document!r}"
        raise ConfigError(f"{source}:1: (top level): expected a mapping of sections, got {kind}")
    plain = _plain(document)
    problems = [_where(source, document, loc) + ": unknown key" for loc in unknown_keys(PlanConfig, plain)]
    try:
        config = PlanConfig.model_validate(plain)
    except ValidationError as exc:
        problems.append(_format_errors(source, document, exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _where(source: str, document: Any, loc: tuple[int | str, ...]) -> str:
    line = _line_of(document, loc)
    return f"{source}:{line}: {'.'.join(str(p) for p in loc)}" if line else f"{source}: {'.'.join(map(str, loc))}"


def unknown_keys(model: Any, data: Any, loc: tuple[int | str, ...] = ()) -> Iterator[tuple[int | str, ...]]:
    """Keys of ``data`` that ``model`` (a pydantic type, possibly nested in lists, dicts, unions)
    does not have, as locations. The models ignore unknown fields on the wire, so that workers of
    different versions interoperate; a person's config file is read strictly instead."""
    origin, args = typing.get_origin(model), typing.get_args(model)
    if origin is typing.Annotated:
        yield from unknown_keys(args[0], data, loc)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            if _is_model(arg) and isinstance(data, dict):
                yield from unknown_keys(arg, data, loc)
                return
    elif origin in (list, tuple) and isinstance(data, list) and args:
        for index, item in enumerate(data):
            yield from unknown_keys(args[0], item, (*loc, index))
    elif origin is dict and isinstance(data, dict) and len(args) == 2:
        for key, item in data.items():
            yield from unknown_keys(args[1], item, (*loc, key))
    elif _is_model(model) and isinstance(data, dict):
        fields = model.model_fields
        if "root" in fields and issubclass(model, RootModel):
            yield from unknown_keys(fields["root"].annotation, data, loc)
            return
        names = set(fields) | {f.alias for f in fields.values() if f.alias}
        for key, item in data.items():
            if key not in names:
                yield (*loc, key)
            else:
                field = fields.get(key) or next(f for f in fields.values() if f.alias == key)
                yield from unknown_keys(field.annotation, item, (*loc, key))


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists (keys as strings)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_plan_config(path: Path | None) -> PlanConfig:
    """Load a plan config file; ``None`` gives the defaults."""
    if path is None:
        return PlanConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_plan_config(text, str(path))
