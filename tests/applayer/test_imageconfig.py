"""The app image's config and manifest composed without a build (applayer/imageconfig.py): what
the Dockerfile's steps do to the base config, the history BuildKit would write, canonical bytes,
manifests of both kinds, and picking a platform out of an index."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from buildkit.applayer import imageconfig
from buildkit.applayer.imageconfig import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    compose_config,
    compose_manifest,
    platform_manifest,
)
from buildkit.applayer.nativefile import DEFAULT_PATH, Recipe, analyse
from buildkit.chain import layers

SHIPPED = layers.shipped_dockerfile("app").read_text(encoding="utf-8")
HEAD = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app/\n"
CREATED = "2024-06-01T12:00:00Z"
DIFF_ID = "sha256:" + "d" * 64
LAYER = "sha256:" + "e" * 64


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def base_config() -> dict[str, Any]:
    """A base image's config as a registry serves it, with the per-build fields a base built by
    the legacy builder or an older BuildKit carries."""
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T00:00:00Z",
        "author": "",
        "docker_version": "20.10.24",
        "container": "3f2c0ffee",
        "container_config": {"Hostname": "3f2c0ffee", "Cmd": ["/bin/sh", "-c", "#(nop) x"]},
        "moby.buildkit.buildinfo.v1": "eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ==",
        "moby.buildkit.cache.v0": "e30=",
        "config": {
            "Hostname": "3f2c0ffee",
            "Image": "sha256:" + "9" * 64,
            "AttachStdout": False,
            "Env": [
                "PATH=/opt/ruby/bin:/usr/local/bin:/usr/bin:/bin",
                "RAILS_ENV=development",
                "LANG=C.UTF-8",
            ],
            "Cmd": ["irb"],
            "Entrypoint": None,
            "WorkingDir": "/app",
            "Labels": {"org.opencontainers.image.source": "base", "shop.layer": "base"},
            "ArgsEscaped": True,
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
        "history": [
            {"created": "2024-05-01T00:00:00Z", "created_by": "ADD rootfs.tar /"},
            {
                "created": "2024-05-01T00:00:00Z",
                "created_by": "ENV LANG=C.UTF-8",
                "empty_layer": True,
            },
            {"created": "2024-05-01T00:00:00Z", "created_by": "RUN bundle install # buildkit"},
        ],
    }


def recipe_of(text: str, **build_args: str) -> Recipe:
    found = analyse(text, {"BASE_IMAGE": "base", **build_args}, base_config()["config"]["Env"])
    assert isinstance(found, Recipe), found
    return found


def compose(
    text: str, base: dict[str, Any] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    data = compose_config(
        base or base_config(), recipe_of(text), DIFF_ID, created=CREATED, labels=labels or {}
    )
    parsed: dict[str, Any] = json.loads(data)
    return parsed


# ---- the config --------------------------------------------------------------------------------


def test_the_shipped_dockerfile_on_a_base() -> None:
    image = compose(SHIPPED, labels={"org.opencontainers.image.revision": "abc123"})
    config = image["config"]
    assert config["Env"] == [
        "PATH=/opt/ruby/bin:/usr/local/bin:/usr/bin:/bin",
        "RAILS_ENV=production",  # replaced where the base had it
        "LANG=C.UTF-8",
        "RAILS_LOG_TO_STDOUT=1",
        "RAILS_SERVE_STATIC_FILES=1",
        "LD_PRELOAD=/usr/local/lib/libjemalloc.so",
        "APP_COMMAND=bundle exec rails server -b 0.0.0.0",
        "PORT=3000",
    ]
    assert config["User"] == "app"
    assert config["WorkingDir"] == "/app"
    assert config["ExposedPorts"] == {"3000/tcp": {}}
    assert config["Cmd"] == ["/bin/sh", "-c", "exec $APP_COMMAND"]
    assert config["ArgsEscaped"] is True
    assert config["Labels"] == {
        "org.opencontainers.image.source": "base",
        "shop.layer": "base",
        "org.opencontainers.image.revision": "abc123",
    }
    assert image["created"] == CREATED
    assert image["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64, DIFF_ID],
    }
    new = image["history"][3:]
    assert image["history"][:3] == base_config()["history"]
    assert [h["created_by"] for h in new] == [
        "COPY . /app/ # buildkit",
        "ARG RAILS_ENV=production",
        "ARG RAILS_LOG_TO_STDOUT=1",
        "ARG RAILS_SERVE_STATIC_FILES=1",
        "ARG LD_PRELOAD=/usr/local/lib/libjemalloc.so",
        "ENV RAILS_ENV=production RAILS_LOG_TO_STDOUT=1 RAILS_SERVE_STATIC_FILES=1"
        " LD_PRELOAD=/usr/local/lib/libjemalloc.so",
        "ARG APP_USER=app",
        "USER app",
        "ARG APP_COMMAND=bundle exec rails server -b 0.0.0.0",
        "ARG APP_PORT=3000",
        "ENV APP_COMMAND=bundle exec rails server -b 0.0.0.0 PORT=3000",
        "EXPOSE [3000/tcp]",
        'CMD ["/bin/sh" "-c" "exec $APP_COMMAND"]',
    ]
    assert new[0] == {
        "created": CREATED,
        "created_by": "COPY . /app/ # buildkit",
        "comment": "buildkit.dockerfile.v0",
    }
    assert all(h["empty_layer"] is True and h["created"] == CREATED for h in new[1:])
    # one layer per non-empty history entry, as a pull expects
    assert sum(not h.get("empty_layer") for h in image["history"]) == 3
    assert len(image["rootfs"]["diff_ids"]) == 3


def test_per_build_fields_of_the_base_are_dropped() -> None:
    image = compose(HEAD)
    assert set(image) == {"architecture", "os", "created", "config", "rootfs", "history"}
    assert set(image["config"]) == {"Env", "Cmd", "WorkingDir", "Labels", "ArgsEscaped"}


def test_a_base_without_path_gets_buildkits_default() -> None:
    base = base_config()
    base["config"]["Env"] = ["LANG=C.UTF-8"]
    assert compose(HEAD, base)["config"]["Env"] == ["LANG=C.UTF-8", f"PATH={DEFAULT_PATH}"]


def test_env_replacement_keeps_the_order() -> None:
    text = HEAD + "ENV LANG=en_US.UTF-8 NEW=1\nENV PATH=/app/bin:$PATH RAILS_ENV=test\n"
    assert compose(text)["config"]["Env"] == [
        "PATH=/app/bin:/opt/ruby/bin:/usr/local/bin:/usr/bin:/bin",
        "RAILS_ENV=test",
        "LANG=en_US.UTF-8",
        "NEW=1",
    ]


def test_labels_base_then_dockerfile_then_imgbuild() -> None:
    text = HEAD + 'LABEL shop.layer=app shop.team="web ops"\n'
    labels = compose(text, labels={"shop.team": "platform"})["config"]["Labels"]
    assert labels == {
        "org.opencontainers.image.source": "base",
        "shop.layer": "app",
        "shop.team": "platform",
    }


@pytest.mark.parametrize(
    ("tail", "cmd", "entrypoint"),
    [
        ("", ["irb"], None),  # inherited
        ('CMD ["rails", "s"]', ["rails", "s"], None),
        ('ENTRYPOINT ["bin/docker-entrypoint"]', None, ["bin/docker-entrypoint"]),  # reset
        ('ENTRYPOINT ["e"]\nCMD ["c"]', ["c"], ["e"]),
        ('CMD ["c"]\nENTRYPOINT ["e"]', ["c"], ["e"]),  # a CMD of this Dockerfile stays
        ("ENTRYPOINT []", None, None),
        ("CMD []", None, None),
        ("ENTRYPOINT bin/run --now", None, ["/bin/sh", "-c", "bin/run --now"]),
    ],
)
def test_entrypoint_resets_an_inherited_cmd(
    tail: str, cmd: list[str] | None, entrypoint: list[str] | None
) -> None:
    config = compose(HEAD + tail + "\n")["config"]
    assert (config.get("Cmd"), config.get("Entrypoint")) == (cmd, entrypoint)


def test_shell_form_runs_in_the_bases_shell() -> None:
    base = base_config()
    base["config"]["Shell"] = ["/bin/bash", "-o", "pipefail", "-c"]
    image = compose(HEAD + 'CMD echo "hi there"\n', base)
    assert image["config"]["Cmd"] == ["/bin/bash", "-o", "pipefail", "-c", 'echo "hi there"']
    assert image["history"][-1]["created_by"] == (
        'CMD ["/bin/bash" "-o" "pipefail" "-c" "echo \\"hi there\\""]'
    )


def test_the_other_metadata() -> None:
    text = HEAD + "WORKDIR /app/tmp\nSTOPSIGNAL SIGQUIT\nVOLUME /data\nEXPOSE 53/udp 80\n"
    base = base_config()
    base["config"]["ExposedPorts"] = {"22/tcp": {}}
    image = compose(text, base)
    config = image["config"]
    assert (config["WorkingDir"], config["StopSignal"]) == ("/app/tmp", "SIGQUIT")
    assert config["Volumes"] == {"/data": {}}
    assert config["ExposedPorts"] == {"22/tcp": {}, "53/udp": {}, "80/tcp": {}}
    assert [h["created_by"] for h in image["history"][-4:]] == [
        "WORKDIR /app/tmp",
        "STOPSIGNAL SIGQUIT",
        "VOLUME [/data]",
        "EXPOSE [53/udp 80/tcp]",
    ]


def test_canonical_bytes() -> None:
    recipe = recipe_of(SHIPPED)
    first = compose_config(base_config(), recipe, DIFF_ID, created=CREATED, labels={"a": "1"})
    shuffled = dict(reversed(list(base_config().items())))
    shuffled["config"] = dict(reversed(list(shuffled["config"].items())))
    again = compose_config(shuffled, recipe, DIFF_ID, created=CREATED, labels={"a": "1"})
    assert first == again
    assert digest(first) == digest(again)
    parsed = json.loads(first)
    assert first == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert first.isascii()
    later = compose_config(
        base_config(), recipe, DIFF_ID, created="2025-01-01T00:00:00Z", labels={"a": "1"}
    )
    assert later != first


def test_the_base_config_is_not_changed() -> None:
    base = base_config()
    before = copy.deepcopy(base)
    compose_config(base, recipe_of(SHIPPED), DIFF_ID, created=CREATED, labels={"x": "y"})
    assert base == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"config": {"OnBuild": ["RUN make"]}}, "ONBUILD triggers"),
        ({"os": "windows"}, "for windows, not linux"),
    ],
)
def test_bases_that_cannot_be_composed(change: dict[str, Any], reason: str) -> None:
    base = {**base_config(), **change}
    assert reason in (imageconfig.unsupported_base(base) or "")
    with pytest.raises(ValueError, match=reason):
        compose_config(base, recipe_of(HEAD), DIFF_ID, created=CREATED, labels={})
    assert imageconfig.unsupported_base(base_config()) is None


def test_a_malformed_diff_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not a sha256 digest"):
        compose_config(base_config(), recipe_of(HEAD), "d" * 64, created=CREATED, labels={})


# ---- the manifest ------------------------------------------------------------------------------


def base_manifest(kind: str) -> dict[str, Any]:
    oci = kind == OCI_MANIFEST
    config_type = (
        "application/vnd.oci.image.config.v1+json"
        if oci
        else "application/vnd.docker.container.image.v1+json"
    )
    layer_type = (
        "application/vnd.oci.image.layer.v1.tar+gzip"
        if oci
        else "application/vnd.docker.image.rootfs.diff.tar.gzip"
    )
    return {
        "schemaVersion": 2,
        "mediaType": kind,
        "config": {"mediaType": config_type, "digest": "sha256:" + "c" * 64, "size": 1234},
        "layers": [
            {"mediaType": layer_type, "digest": "sha256:" + "1" * 64, "size": 30_000_000},
            {
                "mediaType": layer_type,
                "digest": "sha256:" + "2" * 64,
                "size": 12_345,
                "annotations": {"kept": "yes"},
            },
        ],
        "annotations": {
            "org.opencontainers.image.base.name": "docker.io/library/ruby:3.3",
            "org.opencontainers.image.created": "2024-05-01T00:00:00Z",
        },
    }


@pytest.mark.parametrize(
    ("kind", "config_type", "layer_type"),
    [
        (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
    ],
)
def test_manifest_keeps_the_bases_kind(kind: str, config_type: str, layer_type: str) -> None:
    config_bytes = compose_config(
        base_config(), recipe_of(SHIPPED), DIFF_ID, created=CREATED, labels={}
    )
    base = base_manifest(kind)
    media_type, data = compose_manifest(base, config_bytes, LAYER, 4096)
    manifest = json.loads(data)
    assert media_type == kind == manifest["mediaType"]
    assert manifest["schemaVersion"] == 2
    assert manifest["config"] == {
        "mediaType": config_type,
        "digest": digest(config_bytes),
        "size": len(config_bytes),
    }
    assert manifest["layers"] == [
        *base["layers"],
        {"mediaType": layer_type, "digest": LAYER, "size": 4096},
    ]
    assert "annotations" not in manifest  # they describe the base
    assert data == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert compose_manifest(base, config_bytes, LAYER, 4096) == (media_type, data)


def test_an_oci_manifest_without_its_media_type() -> None:
    base = base_manifest(OCI_MANIFEST)
    del base["mediaType"]
    media_type, data = compose_manifest(base, b"{}", LAYER, 1)
    assert media_type == OCI_MANIFEST == json.loads(data)["mediaType"]


@pytest.mark.parametrize(
    "base",
    [
        {"schemaVersion": 1, "name": "x", "fsLayers": []},
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"},
    ],
)
def test_other_manifests_are_refused(base: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="neither Docker schema 2 nor OCI"):
        compose_manifest(base, b"{}", LAYER, 1)


# ---- a base that is an image index -------------------------------------------------------------

INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"digest": "sha256:amd64", "platform": {"architecture": "amd64", "os": "linux"}},
        {
            "digest": "sha256:arm64",
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        },
        {
            "digest": "sha256:armv6",
            "platform": {"architecture": "arm", "os": "linux", "variant": "v6"},
        },
        {
            "digest": "sha256:armv7",
            "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
        },
        {
            "digest": "sha256:attestation",
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        },
    ],
}


@pytest.mark.parametrize(
    ("platform", "found"),
    [
        ("linux/amd64", "sha256:amd64"),
        ("linux/arm64", "sha256:arm64"),
        ("linux/arm64/v8", "sha256:arm64"),
        ("linux/arm/v6", "sha256:armv6"),
        ("linux/arm", "sha256:armv7"),  # arm means arm/v7
        ("linux/arm/v7", "sha256:armv7"),
        ("linux/386", None),
        ("windows/amd64", None),
        ("unknown/unknown", None),
    ],
)
def test_platform_manifest(platform: str, found: str | None) -> None:
    assert platform_manifest(INDEX, platform) == found


def test_platform_manifest_needs_os_and_arch() -> None:
    with pytest.raises(ValueError, match="not a platform"):
        platform_manifest(INDEX, "amd64")
