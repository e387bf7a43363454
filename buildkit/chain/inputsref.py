"""A layer's recorded inputs, beside its image in the registry as an OCI artifact.

The inputs (what the key covers: versions, file digests) let `plan` say "app/models/user.rb
changed" on a machine that never built the layer, such as every CodeBuild build. Kept in the
image config they cost every app push ~36 kB on a large app (a label of 11k file digests);
here they are a separate artifact tagged `<content tag>.inputs`: an OCI manifest whose
`subject` is the image (registries with the referrers API list it) and whose one blob is the
compressed map (labels.encode_inputs: folded per directory when huge). The image itself stays
the new layer + a small config + the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from buildkit import log
from buildkit.chain import labels
from buildkit.engine import artifacts
from buildkit.engine.registry import Manifest, RegistryClient
from buildkit.errors import RegistryError
from buildkit.source.keys import KEY_LENGTH

ARTIFACT_TYPE = "application/vnd.imgbuild.inputs.v1"
PAYLOAD_TYPE = "application/vnd.imgbuild.inputs.v1+text"
SUFFIX = ".inputs"


def tag_for(image_tag: str) -> str:
    return f"{image_tag}{SUFFIX}"


def push(
    client: RegistryClient, repo: str, image_tag: str, subject: Manifest, inputs: Mapping[str, str]
) -> None:
    """Store the artifact after its image (blobs first, manifest last). A registry that refuses
    it costs only the vaguer reasons on fresh machines: warned, never fatal."""
    payload = labels.encode_inputs(inputs).encode()
    try:
        artifacts.put(
            client, repo, tag_for(image_tag), ARTIFACT_TYPE, PAYLOAD_TYPE, payload, subject
        )
    except RegistryError as exc:
        log.warn(f"{repo}:{image_tag}: its inputs were not stored beside it ({exc})")


def push_blobs(client: RegistryClient, repo: str, inputs: Mapping[str, str]) -> None:
    """The artifact's blobs ahead of `push` (which then finds them there), e.g. while the image's
    own blobs upload. Best effort: a failure here is `push`'s to retry and warn about."""
    try:
        artifacts.put_blobs(client, repo, labels.encode_inputs(inputs).encode())
    except RegistryError:
        return


def load(client: RegistryClient, repo: str, image_tag: str) -> dict[str, str] | None:
    """The inputs stored beside repo:image_tag, or None (none stored, or unreadable)."""
    payload = artifacts.get(client, repo, tag_for(image_tag), ARTIFACT_TYPE)
    return None if payload is None else labels.decode_inputs(payload.decode(errors="replace"))


def load_latest(client: RegistryClient, repo: str, moving_tag: str) -> dict[str, str] | None:
    """The inputs of the image repo:moving_tag points at (its content tag from its key label)."""
    try:
        manifest = client.manifest(repo, moving_tag)
        if manifest is None or "config" not in manifest.body:
            return None
        config = json.loads(client.blob(repo, str(manifest.body["config"]["digest"])))
    except (RegistryError, KeyError, TypeError, ValueError):
        return None
    key = ((config.get("config") or {}).get("Labels") or {}).get(labels.KEY)
    return load(client, repo, str(key)[:KEY_LENGTH]) if key else None
