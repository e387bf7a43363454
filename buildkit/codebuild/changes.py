"""What `plan` found: field-by-field changes between the desired resources and AWS.

Only the fields imgbuild sets are compared (AWS fills in defaults of its own), except in lists it
owns whole (environment variables, tags, policy statements), where an extra entry is a change too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from buildkit.codebuild.project import Account

Action = Literal["create", "update", "unchanged"]
#: Lists of mappings compared entry by entry, keyed by this field; other lists compare whole.
_LIST_KEYS = ("name", "key", "Sid")
_OWNED = ("environment.environmentVariables[", "tags[", "Statement[")
_MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any

    def line(self) -> str:
        return f"{self.path}: {_show(self.old)} → {_show(self.new)}"


@dataclass(frozen=True, kw_only=True)
class Change:
    action: Action
    kind: str  # role, role policy, report group, project, webhook
    name: str
    fields: tuple[FieldChange, ...] = ()
    body: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in self.fields],
        }


@dataclass(frozen=True, kw_only=True)
class Plan:
    account: Account
    changes: tuple[Change, ...]

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != "unchanged")

    def counts(self) -> dict[str, int]:
        return {
            a: sum(1 for c in self.changes if c.action == a)
            for a in ("create", "update", "unchanged")
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account.id,
            "region": self.account.region,
            "changes": [c.as_json() for c in self.changes],
            "summary": self.counts(),
        }

    def lines(self) -> list[str]:
        marks = {"create": "+", "update": "~", "unchanged": "="}
        out = []
        for change in self.changes:
            suffix = " (no changes)" if change.action == "unchanged" else ""
            out.append(
                f"{marks[change.action]} {change.action} {change.kind} {change.name}{suffix}"
            )
            out.extend(f"    {f.line()}" for f in change.fields if change.action == "update")
        counts = self.counts()
        out.append(
            f"plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['unchanged']} unchanged"
        )
        return out


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, sort_keys=True)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path; lists of keyed mappings become `path[KEY]` entries."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for list_key in _LIST_KEYS:
            if all(list_key in v for v in value):
                flat = {}
                for item in value:
                    rest = {k: v for k, v in item.items() if k != list_key}
                    flat.update(flatten(rest or True, f"{prefix}[{item[list_key]}]"))
                return flat
    return {prefix: value}


def diff(desired: Any, current: Any) -> tuple[FieldChange, ...]:
    """Changes that turn current into desired, comparing only what desired sets."""
    want, have = flatten(desired), flatten(current)
    changes = [
        FieldChange(path, have.get(path), value)
        for path, value in want.items()
        if have.get(path, _MISSING) != value
    ]
    changes.extend(
        FieldChange(path, value, None)
        for path, value in have.items()
        if path not in want and any(o in path for o in _OWNED)
    )
    return tuple(changes)


def compare(
    kind: str, name: str, desired: dict[str, Any], current: Any, fields_of: Any = None
) -> Change:
    """create when current is None, else update/unchanged by diffing desired (or just
    `fields_of`, its comparable part) against current; `desired` is what apply sends."""
    if current is None:
        return Change(action="create", kind=kind, name=name, body=desired)
    fields = diff(desired if fields_of is None else fields_of, current)
    action: Action = "update" if fields else "unchanged"
    return Change(action=action, kind=kind, name=name, fields=fields, body=desired)
