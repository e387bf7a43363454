"""`--kustomize DIR`: pin the pushed app image in a kustomization's `images:` by its digest.

kustomize's images transformer rewrites every container `image:` whose name (without tag or
digest) is an entry's `name`: to `newName` when given, with `digest` in place of the tag. So
after a push, imgbuild sets one entry,

    - name: shop-app                                  # what the manifests say (kustomize.name)
      newName: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-app
      digest: sha256:…

and every process type of the app (docs/deploy.md) runs that one digest.

The file is edited, not rewritten: the entry is replaced (or appended to `images:`, or an
`images:` appended to the file) at the text positions PyYAML's composer gives, so every other
line, comment and the key order stay as they were. The result is parsed back and must be the old
document with only that entry changed; when the edit cannot say so (an unusual layout), the
document is written out whole instead, without its comments, and the log says so. It is checked
before anything is built (`check`) and written atomically, keeping the file's mode.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from buildkit import fsutil, log
from buildkit.chain import layers
from buildkit.errors import InputError, PushFailedError
from buildkit.run import summary
from buildkit.source import dockerignore

if TYPE_CHECKING:
    from buildkit.chain.model import LayerOutcome
    from buildkit.config.loading import Config

#: The names kustomize reads, in its order; a directory with more than one is an error to it.
FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MANAGED = ("name", "newName", "digest")  # written in this order; newTag is dropped


@dataclass(frozen=True)
class ImageEntry:
    """One `images:` entry: the manifests' image `name`, its `newName` and `digest`."""

    name: str
    new_name: str
    digest: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "newName": self.new_name, "digest": self.digest}


@dataclass(frozen=True)
class Target:
    """Where a run pins its app image: the kustomization file and the entry's name."""

    path: Path
    name: str


def prepare(config: Config, directory: Path) -> Target:
    """Preflight of `--kustomize DIR`, before anything is built: the file, readable, with an
    `images:` imgbuild can set the app's entry in. The name is `kustomize.name`, else the app
    repository's name (`<name>-app`, or `ecr.repositories.app`)."""
    path = locate(directory)
    _outside_the_source(config, path)
    name = config.kustomize.name or layers.repository_name(config, "app")
    check(path, name)
    return Target(path=path, name=name)


def _outside_the_source(config: Config, path: Path) -> None:
    """A kustomization the app's image copies would put each pushed digest into the next
    build's key: every deploy commit a new image, and a new digest to pin. Refused, unless the
    app's ignore rules leave it out."""
    context = config.app.context.resolve()
    try:
        relpath = path.resolve().relative_to(context).as_posix()
    except ValueError:
        return
    runtime = layers.RUNTIME_PATTERNS if config.app.dockerfile is None else ()
    if dockerignore.rules_for_context(context, extra=runtime).is_ignored(relpath):
        return
    folder = relpath.partition("/")[0]
    raise InputError(
        f"--kustomize {path} is in the app's source, so each pinned digest would change the "
        f"app's key and make a new image; add /{folder} to {context / '.dockerignore'}"
    )


def pin(target: Target, outcomes: Sequence[LayerOutcome]) -> dict[str, str]:
    """Set the pushed app image in the kustomization; what was written, for --json."""
    app = summary.app_outcome(outcomes)
    if app is None or app.digest is None:
        raise PushFailedError(
            f"no pushed app image to write into {target.path}; rerun `imgbuild app --push`"
        )
    entry = ImageEntry(name=target.name, new_name=app.plan.spec.repository, digest=app.digest)
    result = set_image(target.path, entry)
    pinned = f"{entry.new_name}@{entry.digest}"
    log.info(f"kustomize: {target.path}: images {entry.name} -> {pinned} ({result})")
    return {"file": str(target.path), **entry.as_dict(), "result": result}


def locate(directory: Path) -> Path:
    """The kustomization file of `directory`, or an InputError saying what is wrong."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise InputError(f"--kustomize {directory} {what}; give the directory of a kustomization")
    found = [directory / name for name in FILE_NAMES if (directory / name).is_file()]
    if not found:
        raise InputError(
            f"--kustomize {directory} has no {', '.join(FILE_NAMES)}; create one "
            "(`kustomize create --resources deployment.yaml`) or give its directory"
        )
    if len(found) > 1:
        raise InputError(
            f"--kustomize {directory} has {' and '.join(p.name for p in found)}; kustomize "
            "refuses more than one, keep one"
        )
    return found[0]


def check(path: Path, name: str) -> None:
    """Preflight: the file reads as a kustomization whose `images:` imgbuild can set `name` in."""
    _images(path, _read(path), name)


def set_image(path: Path, entry: ImageEntry) -> str:
    """Write `entry` into the file; "added", "updated" or "unchanged"."""
    text = _read(path)
    images = _images(path, text, entry.name)
    before = next((item for item in images if item.get("name") == entry.name), None)
    if before == entry.as_dict():
        return "unchanged"
    new = edit(text, entry, str(path))
    fsutil.atomic_write_text(path, new, mode=path.stat().st_mode & 0o7777)
    return "added" if before is None else "updated"


def edit(text: str, entry: ImageEntry, where: str) -> str:
    """`text` with `entry` set in `images:`; every other byte kept when the layout allows."""
    root = _compose(text, where)
    data = _load(text, where) or {}
    expected = {**data, "images": _updated(list(data.get("images") or []), entry)}
    edited = None
    if root is None or isinstance(root, yaml.MappingNode):
        edited = _splice(text, root, entry)
    if edited is not None and _reads_as(edited, expected):
        return edited
    log.warn(f"{where}: rewritten whole to set images {entry.name} (its comments are not kept)")
    return yaml.safe_dump(expected, sort_keys=False, default_flow_style=False)


def _updated(images: list[Any], entry: ImageEntry) -> list[Any]:
    for index, item in enumerate(images):
        if isinstance(item, dict) and item.get("name") == entry.name:
            return [*images[:index], entry.as_dict(), *images[index + 1 :]]
    return [*images, entry.as_dict()]


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as handle:  # keep CRLF as it is
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}); fix the file") from None


@contextlib.contextmanager
def _as_input_error(where: str) -> Iterator[None]:
    """PyYAML's errors as one line naming the file (and line, when it has one): exit 4."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise InputError(f"{where}:{line}: invalid YAML: {exc.problem}; fix the file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: invalid YAML: {exc}; fix the file") from None


def _compose(text: str, where: str) -> yaml.Node | None:
    with _as_input_error(where):
        return yaml.compose(text, Loader=yaml.SafeLoader)


def _load(text: str, where: str) -> Any:
    """The document's values (what PyYAML's composer accepted may still not construct: a
    `!!python/object` tag, a list as a key)."""
    with _as_input_error(where):
        return yaml.safe_load(text)


def _reads_as(text: str, expected: Any) -> bool:
    try:
        return bool(yaml.safe_load(text) == expected)
    except yaml.YAMLError:
        return False


def _images(path: Path, text: str, name: str) -> list[dict[str, Any]]:
    """The `images:` entries, checked: a mapping document, a list of mappings, `name` once."""
    root = _compose(text, str(path))
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{path}:{root.start_mark.line + 1}: a kustomization is a mapping")
    node = _value(root, "images")
    data = _load(text, str(path))
    images = data.get("images") if isinstance(data, dict) else None
    if images is None:
        return []
    line = node.start_mark.line + 1 if node is not None else 0
    if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
        raise InputError(
            f"{path}:{line}: images must be a list of entries (- name: …); fix the file"
        )
    if sum(1 for item in images if item.get("name") == name) > 1:
        raise InputError(f"{path}:{line}: images names {name} more than once; keep one entry")
    return images


def _value(root: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((v for k, v in root.value if getattr(k, "value", None) == key), None)


def _key(root: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((k for k, _ in root.value if getattr(k, "value", None) == key), None)


def _splice(text: str, root: yaml.MappingNode | None, entry: ImageEntry) -> str | None:
    """The minimal edit, or None when the layout is not one of those handled here. `root` None:
    a file of comments only."""
    nl = "\r\n" if "\r\n" in text else "\n"
    key = _key(root, "images") if root is not None else None
    node = _value(root, "images") if root is not None else None
    if key is None or node is None:
        if root is not None and (root.flow_style or root.start_mark.column != 0):
            return None
        body = _block(entry, 0, 2, nl)
        return f"{text}{'' if not text or text.endswith(nl) else nl}images:{nl}{body}{nl}"
    column = key.start_mark.column
    if _is_empty(node):  # `images:`, `images: ~`, `images: []`
        body = _block(entry, column, column + 2, nl)
        return _replace(text, key.end_mark.index, node.end_mark.index, f":{nl}{body}")
    if not isinstance(node, yaml.SequenceNode):
        return None
    if node.flow_style:
        return _replace(text, node.start_mark.index, node.end_mark.index, _flow(text, entry))
    return _splice_block(text, node, entry, nl)


def _splice_block(text: str, seq: yaml.SequenceNode, entry: ImageEntry, nl: str) -> str | None:
    dash = seq.start_mark.column
    for item in seq.value:
        if not isinstance(item, yaml.MappingNode) or not item.value:
            return None
        if _scalar(_value(item, "name")) != entry.name:
            continue
        if item.flow_style:
            rendered = json.dumps(entry.as_dict())
            return _replace(text, item.start_mark.index, item.end_mark.index, rendered)
        # To the end of its last line: a comment there spoke of the old value.
        end = _line_end(text, item.value[-1][1].end_mark.index, nl)
        column = item.start_mark.column
        return _replace(text, item.start_mark.index, end, _block(entry, None, column, nl))
    last = seq.value[-1] if seq.value else None
    if last is None:
        return None
    column = last.start_mark.column
    end = last.end_mark.index if last.flow_style else last.value[-1][1].end_mark.index
    at = _line_end(text, end, nl)  # after the last entry's line, its comment included
    return _replace(text, at, at, nl + _block(entry, dash, column, nl))


def _block(entry: ImageEntry, dash: int | None, column: int, nl: str) -> str:
    """The entry as block lines at `column`; with a `-` at `dash` first (None: no dash, the
    text goes where an old entry's first key was)."""
    lines = [f"{key}: {_plain(value)}" for key, value in zip(_MANAGED, _values(entry), strict=True)]
    first = lines[0] if dash is None else " " * dash + "-" + " " * (column - dash - 1) + lines[0]
    return nl.join([first, *(" " * column + line for line in lines[1:])])


def _values(entry: ImageEntry) -> tuple[str, str, str]:
    return entry.name, entry.new_name, entry.digest


def _flow(text: str, entry: ImageEntry) -> str:
    images = _load(text, "").get("images") or []
    return json.dumps(_updated(list(images), entry))


def _plain(value: str) -> str:
    """A plain scalar when it reads back as this string, else a quoted one."""
    try:
        plain = yaml.safe_load(value) == value and "#" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value)


def _scalar(node: yaml.Node | None) -> Any:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _is_empty(node: yaml.Node) -> bool:
    if isinstance(node, yaml.ScalarNode):
        return node.tag == "tag:yaml.org,2002:null"
    return isinstance(node, yaml.SequenceNode) and not node.value


def _line_end(text: str, index: int, nl: str) -> int:
    cut = text.find(nl, index)
    return len(text) if cut < 0 else cut


def _replace(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]
