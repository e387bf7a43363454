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

import hashlib
import json
from collections.abc import Mapping

from buildkit import log
from buildkit.chain import labels
from buildkit.engine.registry import Manifest, RegistryClient
from buildkit.errors import RegistryError
from buildkit.source.keys import KEY_LENGTH

ARTIFACT_TYPE = "application/vnd.imgbuild.inputs.v1"
PAYLOAD_TYPE = "application/vnd.imgbuild.inputs.v1+text"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
SUFFIX = ".inputs"


def tag_for(image_tag: str) -> str:
    return f"{image_tag}{SUFFIX}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def artifact(subject: Manifest, inputs: Mapping[str, str]) -> tuple[bytes, bytes]:
    """(payload blob, manifest bytes) of the artifact for the image `subject`."""
    payload = labels.encode_inputs(inputs).encode()
    body = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": _descriptor(EMPTY_TYPE, EMPTY),
        "layers": [_descriptor(PAYLOAD_TYPE, payload)],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.raw),
        },
    }
    return payload, json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def push(
    client: RegistryClient, repo: str, image_tag: str, subject: Manifest, inputs: Mapping[str, str]
) -> None:
    """Store the artifact after its image (blobs first, manifest last). A registry that refuses
    it costs only the vaguer reasons on fresh machines: warned, never fatal."""
    payload, raw = artifact(subject, inputs)
    try:
        for data in (EMPTY, payload):
            digest = _digest(data)
            if not client.has_blob(repo, digest):
                client.upload_blob(repo, digest, data)
        body = json.loads(raw)
        manifest = Manifest(digest=_digest(raw), media_type=MANIFEST_TYPE, body=body, raw=raw)
        client.put_manifest(repo, tag_for(image_tag), manifest)
    except RegistryError as exc:
        log.warn(f"{repo}:{image_tag}: its inputs were not stored beside it ({exc})")


def load(client: RegistryClient, repo: str, image_tag: str) -> dict[str, str] | None:
    """The inputs stored beside repo:image_tag, or None (none stored, or unreadable)."""
    try:
        manifest = client.manifest(repo, tag_for(image_tag))
        if manifest is None or manifest.body.get("artifactType") != ARTIFACT_TYPE:
            return None
        layers = list(manifest.body.get("layers") or [])
        if len(layers) != 1:
            return None
        payload = client.blob(repo, str(layers[0]["digest"]))
    except (RegistryError, KeyError, TypeError):
        return None
    return labels.decode_inputs(payload.decode(errors="replace"))


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
