"""YAML with line numbers and ${VAR} expansion, so every config error can say file:line.

PyYAML's composed node tree keeps each node's position; we convert it to plain Python values and
remember the line of every dotted key path ("ruby.source.path" -> 7).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from buildkit.errors import ConfigError

# Only its scalar constructor is used (the stream is empty), so one instance serves every file.
_SCALARS = yaml.SafeLoader("")
_MAX_DEPTH = 50
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Document:
    """A parsed config file: plain values plus the line of each key path."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # key -> "--registry", "IMGBUILD_…"

    def where(self, key_path: str) -> str:
        """'imgbuild.yaml:12' for a key path, or the file alone when the key has no line."""
        if key_path in self.origins:
            return self.origins[key_path]
        line = self.lines.get(key_path)
        return f"{self.path}:{line}" if line else str(self.path)


def expand_vars(text: str, env: Mapping[str, str], where: str) -> str:
    """Expand ${VAR} and ${VAR:-default} like a shell; an unset VAR without default is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: ${{{name}}} is not set; export it or write ${{{name}:-default}}"
        )

    return _VAR.sub(substitute, text)


def load(path: Path, env: Mapping[str, str] | None = None) -> Document:
    """Read a YAML mapping from path; syntax errors name file:line."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; create it or pass -c FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            depth += isinstance(event, yaml.CollectionStartEvent)
            depth -= isinstance(event, yaml.CollectionEndEvent)
            if depth > _MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise ConfigError(f"{path}:{line}: nested more than {_MAX_DEPTH} levels deep")
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise ConfigError(
                    f"{path}:{line}: YAML aliases (*{event.anchor}) are not supported in the "
                    "config; write the value out"
                )
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"{path}:{line}: invalid YAML: {problem}; fix the syntax") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply; flatten it") from None
    doc = Document(path=path, data={})
    if node is None:
        return doc
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(
            f"{path}:{node.start_mark.line + 1}: the config must be a mapping of keys"
        )
    value = _convert(node, "", doc, env)
    assert isinstance(value, dict)
    doc.data = value
    return doc


def _convert(node: yaml.Node, key_path: str, doc: Document, env: Mapping[str, str]) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, key_path, doc, env)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, key_path, doc, env) for item in node.value]
    assert isinstance(node, yaml.ScalarNode)
    value = _SCALARS.construct_object(node)  # YAML 1.1 int/bool/null resolution
    if isinstance(value, str):
        return expand_vars(value, env, f"{doc.path}:{node.start_mark.line + 1}")
    return value


def _convert_mapping(
    node: yaml.MappingNode, key_path: str, doc: Document, env: Mapping[str, str]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"{doc.path}:{line}: keys must be plain names")
        key = str(key_node.value)
        full = f"{key_path}.{key}" if key_path else key
        if key in result:
            raise ConfigError(f"{doc.path}:{line}: duplicate key '{full}'; keep one")
        doc.lines[full] = line
        result[key] = _convert(value_node, full, doc, env)
    return result
