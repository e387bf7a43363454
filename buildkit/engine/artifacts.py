"""Small OCI artifacts beside an image in its repository: one payload blob under a tag.

imgbuild keeps facts about an image that must not live in the image itself (its config is
downloaded by every pull) next to it: a layer's recorded inputs (chain.inputsref) and the
uncompressed sizes of its layers (reports.sizesref). Each is an OCI image manifest with an
`artifactType`, the empty config and one layer (the payload), tagged by a name derived from the
image; a `subject`, when given, lets registries with the referrers API list it under the image.
"""

from __future__ import annotations

import hashlib
import json

from buildkit.engine.registry import Manifest, RegistryClient
from buildkit.errors import RegistryError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def manifest_bytes(
    artifact_type: str, payload_type: str, payload: bytes, subject: Manifest | None = None
) -> bytes:
    """The artifact's manifest, canonical JSON (so one payload always has one digest)."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": _descriptor(EMPTY_TYPE, EMPTY),
        "layers": [_descriptor(payload_type, payload)],
    }
    if subject is not None:
        body["subject"] = {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.raw),
        }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def put(
    client: RegistryClient,
    repo: str,
    tag: str,
    artifact_type: str,
    payload_type: str,
    payload: bytes,
    subject: Manifest | None = None,
) -> None:
    """Store the artifact: blobs first, the manifest last, so the tag never names a missing
    blob. Raises RegistryError; callers decide whether that matters."""
    raw = manifest_bytes(artifact_type, payload_type, payload, subject)
    put_blobs(client, repo, payload)
    manifest = Manifest(
        digest=digest_of(raw), media_type=MANIFEST_TYPE, body=json.loads(raw), raw=raw
    )
    client.put_manifest(repo, tag, manifest)


def put_blobs(client: RegistryClient, repo: str, payload: bytes) -> None:
    """The artifact's blobs (its empty config, its payload), where the registry lacks them:
    `put` does this first; a caller may do it earlier, beside other uploads."""
    for data in (EMPTY, payload):
        digest = digest_of(data)
        if not client.has_blob(repo, digest):
            client.upload_blob(repo, digest, data)


def get(client: RegistryClient, repo: str, tag: str, artifact_type: str) -> bytes | None:
    """The payload of the artifact repo:tag, or None (no such tag, another kind of manifest,
    or unreadable)."""
    try:
        manifest = client.manifest(repo, tag)
        if manifest is None or manifest.body.get("artifactType") != artifact_type:
            return None
        layers = list(manifest.body.get("layers") or [])
        if len(layers) != 1:
            return None
        return client.blob(repo, str(layers[0]["digest"]))
    except (RegistryError, KeyError, TypeError):
        return None
