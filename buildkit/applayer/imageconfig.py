"""The app image's config and manifest, composed without a build (the registry-native path).

`compose_config` does to the base image's config what BuildKit does when it builds the app
Dockerfile on that base (moby/buildkit frontend/dockerfile/dockerfile2llb/convert.go): the steps
of a `nativefile.Recipe` update `config` in order, each adds a `history` entry, and the one new
layer's diff_id goes at the end of `rootfs.diff_ids`. `compose_manifest` lists the base's layers
as they are plus the new one, in the base manifest's own kind (Docker schema 2 or OCI).
`platform_manifest` picks a platform's manifest out of a base that is an image index.

Both write canonical JSON (sorted keys, no blanks, ASCII), so equal inputs give equal bytes and
equal digests on every machine.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform as host_platform
import re
from collections.abc import Mapping
from typing import Any

from buildkit.applayer.nativefile import DEFAULT_PATH, DEFAULT_SHELL, Recipe, Step
from buildkit.engine.registry import Manifest, RegistryClient

__all__ = [
    "DOCKER_MANIFEST",
    "OCI_MANIFEST",
    "compose_config",
    "compose_manifest",
    "platform_manifest",
    "unsupported_base",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# The manifest kind -> (config media type, gzip'd layer media type).
_KINDS = {
    DOCKER_MANIFEST: (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ),
    OCI_MANIFEST: (
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
}
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HISTORY_COMMENT = "buildkit.dockerfile.v0"

# What the composed config keeps: the fields of the image config BuildKit writes (the OCI image
# config plus Docker's Healthcheck, OnBuild and Shell). BuildKit reads a base config into those
# types and writes them back, so whatever else a base carries is gone from its result too. That
# drops what describes the base's own build and differs per machine or per run: `container`,
# `container_config`, `docker_version`, `id`, `parent`, `comment` (the legacy builder's and
# `docker commit`'s), `moby.buildkit.buildinfo.v1` (BuildKit 0.10-0.11 build sources),
# `moby.buildkit.cache.v0` (inline cache metadata naming the base's layers), and in `config` the
# legacy builder's `Hostname` (a container ID), `Image` (the parent's ID), `Domainname`,
# `AttachStdin`/`AttachStdout`/`AttachStderr`, `Tty`, `OpenStdin` and `StdinOnce`.
_IMAGE_KEYS = frozenset(
    {"architecture", "author", "config", "created", "history", "os", "os.features", "os.version"}
    | {"rootfs", "variant"}
)
_CONFIG_KEYS = frozenset(
    {"User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels"}
    | {"StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell"}
)


def unsupported_base(base_config: Mapping[str, Any]) -> str | None:
    """Why the app cannot be composed on this base, or None: ONBUILD triggers would have to run
    (BuildKit runs them first thing), and only Linux images are composed."""
    if (base_config.get("config") or {}).get("OnBuild"):
        return "the base image has ONBUILD triggers, which run only in a build"
    if base_config.get("os", "linux") != "linux":
        return f"the base image is for {base_config.get('os')}, not linux"
    return None


def compose_config(
    base_config: Mapping[str, Any],
    recipe: Recipe,
    diff_id: str,
    *,
    created: str,
    labels: Mapping[str, str],
) -> bytes:
    """The app image's config blob: the base config, the recipe's steps applied, the new layer's
    `diff_id` (sha256 of the uncompressed tar) appended, `created` (RFC 3339) as its time and
    every new history entry's. `labels` (imgbuild's own) go over the Dockerfile's LABELs, as
    `--label` does. ValueError for a base `unsupported_base` names, or a malformed diff_id."""
    reason = unsupported_base(base_config)
    if reason or not _DIGEST.fullmatch(diff_id):
        raise ValueError(reason or f"not a sha256 digest: {diff_id!r}")
    image = _kept(base_config, _IMAGE_KEYS)
    config = _kept(base_config.get("config") or {}, _CONFIG_KEYS)
    env = list(config.get("Env") or [])
    if not any(entry.partition("=")[0] == "PATH" for entry in env):
        env.append(f"PATH={DEFAULT_PATH}")  # as BuildKit does for a base without one
    config["Env"] = env
    shell = config.get("Shell") or list(DEFAULT_SHELL)
    history = list(image.get("history") or [])
    cmd_set = False
    for step in recipe.steps:
        cmd_set = _apply(config, step, shell, cmd_set=cmd_set)
        entry = {"created": created, "created_by": _created_by(step, shell)}
        entry |= {"comment": HISTORY_COMMENT}
        history.append(entry if step.instruction == "COPY" else {**entry, "empty_layer": True})
    if labels:
        config["Labels"] = {**(config.get("Labels") or {}), **labels}
    rootfs = image.get("rootfs") or {}
    image |= {
        "config": _kept(config, _CONFIG_KEYS),
        "created": created,
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": [*rootfs.get("diff_ids", []), diff_id]},
    }
    return _canonical(image)


def _apply(config: dict[str, Any], step: Step, shell: list[str], *, cmd_set: bool) -> bool:
    """What the step does to `config` (BuildKit's dispatch*); whether a CMD is set by now."""
    match step.instruction:
        case "ENV":
            for name, value in step.pairs:
                _set_env(config["Env"], name, value)
        case "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}), **dict(step.pairs)}
        case "USER":
            config["User"] = step.value
        case "WORKDIR":
            config["WorkingDir"] = step.value
        case "STOPSIGNAL":
            config["StopSignal"] = step.value
        case "EXPOSE" | "VOLUME":
            key = "ExposedPorts" if step.instruction == "EXPOSE" else "Volumes"
            config[key] = {**(config.get(key) or {}), **{word: {} for word in step.words}}
        case "CMD":
            config["Cmd"] = step.argv(shell)
            config["ArgsEscaped"] = True  # BuildKit sets it on every CMD (for Windows)
            return True
        case "ENTRYPOINT":
            config["Entrypoint"] = step.argv(shell)
            if not cmd_set:
                config.pop("Cmd", None)  # the base's CMD does not outlive a new ENTRYPOINT
    return cmd_set


def _set_env(env: list[str], name: str, value: str) -> None:
    """Replace `name`'s entry where it is, or append one (BuildKit's addEnv)."""
    for index, entry in enumerate(env):
        if entry.partition("=")[0] == name:
            env[index] = f"{name}={value}"
            return
    env.append(f"{name}={value}")


def _created_by(step: Step, shell: list[str]) -> str:
    """The step's history line; CMD and ENTRYPOINT show their argv as Go's %q does."""
    if step.instruction not in ("CMD", "ENTRYPOINT"):
        return step.created_by
    return f"{step.instruction} [{' '.join(_go_quote(arg) for arg in step.argv(shell))}]"


def _go_quote(text: str) -> str:
    """Go's strconv.Quote: printable characters as they are, escapes for the rest."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x80
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return '"' + "".join(out) + '"'


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def compose_manifest(
    base_manifest: Mapping[str, Any], config_bytes: bytes, layer_digest: str, layer_size: int
) -> tuple[str, bytes]:
    """(media type, bytes) of the app image's manifest: the base's kind, its layer descriptors as
    they are, the new gzip'd layer appended, the config descriptor for `config_bytes`. The base's
    annotations and subject describe the base, so they are not carried over."""
    kind = base_manifest.get("mediaType") or _oci_if_oci_config(base_manifest)
    if kind not in _KINDS or base_manifest.get("schemaVersion") != 2:
        msg = f"the base manifest is neither Docker schema 2 nor OCI: {kind!r}"
        raise ValueError(msg)
    if not _DIGEST.fullmatch(layer_digest) or layer_size < 0:
        msg = f"not a layer digest and size: {layer_digest!r}, {layer_size}"
        raise ValueError(msg)
    config_type, layer_type = _KINDS[kind]
    layers = [copy.deepcopy(dict(layer)) for layer in base_manifest.get("layers", [])]
    layers.append({"mediaType": layer_type, "digest": layer_digest, "size": layer_size})
    digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": kind,
        "config": {"mediaType": config_type, "digest": digest, "size": len(config_bytes)},
        "layers": layers,
    }
    return kind, _canonical(manifest)


def _oci_if_oci_config(manifest: Mapping[str, Any]) -> str | None:
    """An OCI manifest may leave out its mediaType; its config descriptor says what it is."""
    config_type = (manifest.get("config") or {}).get("mediaType")
    return OCI_MANIFEST if config_type == _KINDS[OCI_MANIFEST][0] else None


def wanted_platform(configured: str | None) -> str:
    """The build's platform: the configured one, else the host's (what BuildKit builds)."""
    return configured or f"linux/{_arch_variant(host_platform.machine(), '')[0]}"


def image_manifest(
    client: RegistryClient, repo: str, manifest: Manifest, configured: str | None
) -> Manifest | None:
    """The image manifest itself, or for an index (engine 26 pushes one) its entry for the
    build's platform; None when the index has none or the entry is gone."""
    if "manifests" not in manifest.body:
        return manifest
    digest = platform_manifest(manifest.body, wanted_platform(configured))
    return client.manifest(repo, digest) if digest else None


def platform_manifest(index: Mapping[str, Any], platform: str) -> str | None:
    """The digest of the index's manifest for `platform` ("linux/amd64", "linux/arm64",
    "linux/arm/v7"), or None. Variants are compared normalised as containerd does (arm64 is
    arm64/v8, arm is arm/v7); attestation manifests (platform unknown/unknown) never match."""
    os_name, _, rest = platform.lower().partition("/")
    arch, _, variant = rest.partition("/")
    if not os_name or not arch:
        msg = f"not a platform (os/arch[/variant]): {platform!r}"
        raise ValueError(msg)
    wanted = (os_name, *_arch_variant(arch, variant))
    for entry in index.get("manifests", []):
        found = entry.get("platform") or {}
        if found.get("os") == "unknown" or found.get("architecture") == "unknown":
            continue
        arch_variant = _arch_variant(found.get("architecture", ""), found.get("variant", ""))
        if (found.get("os", "").lower(), *arch_variant) == wanted:
            return str(entry["digest"])
    return None


def _arch_variant(arch: str, variant: str) -> tuple[str, str]:
    """containerd's platforms.Normalize for the architectures images come in."""
    arch, variant = arch.lower(), variant.lower()
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}.get(arch, arch)
    if (arch, variant) in (("amd64", "v1"), ("arm64", "8"), ("arm64", "v8"), ("arm64", "v8.0")):
        variant = ""
    if arch == "arm" and variant in ("", "5", "6", "7", "8"):
        variant = "v" + (variant or "7")
    return arch, variant


def _kept(fields: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """The `keys` of `fields` that hold something (Go's omitempty drops the rest), copied."""
    return {
        key: copy.deepcopy(value)
        for key, value in fields.items()
        if key in keys and value is not None and value is not False and value not in ("", [], {})
    }


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
