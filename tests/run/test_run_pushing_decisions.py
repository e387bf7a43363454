"""What run.pushing pushes and which tags it writes, in which order, against a fake registry
(manifests in a dict) and a fake daemon push; real pushes are in tests/test_chain_integration.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pytest

from buildkit.applayer.assets import AssetsSpec
from buildkit.applayer.bulk import BulkSpec
from buildkit.chain import inputsref
from buildkit.chain.model import LayerOutcome, LayerPlan, LayerSpec
from buildkit.chain.tagpolicy import TagPolicy
from buildkit.engine.credentials import Auth
from buildkit.engine.docker_api import LocalImage
from buildkit.engine.ecr import TokenProvider
from buildkit.engine.registry import Manifest, RegistryClient, split_ref
from buildkit.errors import PushFailedError
from buildkit.run import pushing
from buildkit.run.access import RegistryAccess

HOST = "reg.test:5000"
SHA = "0123456789abcdef0123456789abcdef01234567"
RELEASE = TagPolicy(
    release=True, app_tags=("git-0123456", f"git-{SHA}"), moving=("latest", "main"), app_moving=()
)
PULL_REQUEST = TagPolicy(release=False, app_tags=(), moving=(), app_moving=("pr-5",))
NO_TAGS = TagPolicy(release=False, app_tags=(), moving=(), app_moving=())


def manifest_of(image_id: str) -> Manifest:
    """An image manifest whose config digest is the image id (a classic image store's id)."""
    body = {"schemaVersion": 2, "config": {"digest": image_id}, "layers": []}
    raw = json.dumps(body).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return Manifest(
        digest=digest, media_type="application/vnd.oci.image.manifest.v1+json", body=body, raw=raw
    )


class FakeRegistry(RegistryClient):
    """Tags in a dict; every write lands in `events`, shared with the daemon's pushes."""

    def __init__(self, events: list[str]) -> None:  # no host to reach: the base __init__ is not run
        self.tags: dict[tuple[str, str], Manifest] = {}
        self.events = events
        self.fetched: list[str] = []  # manifest GETs: a no-op run should need HEADs only
        self.blobs: dict[tuple[str, str], bytes] = {}
        # The `<tag>.inputs` artifacts (chain.inputsref) put beside pushed images, in order;
        # kept out of `events`, which is about images and their tags.
        self.artifacts: list[str] = []

    def holds(self, image: str, image_id: str) -> str:
        """Put image there before the run (an earlier run pushed it); return its digest."""
        _, repo, tag = split_ref(image)
        self.tags[repo, tag] = manifest_of(image_id)
        return self.tags[repo, tag].digest

    def exists(self, repo: str, reference: str) -> str | None:
        found = self.tags.get((repo, reference))
        return found.digest if found else None

    def manifest(self, repo: str, reference: str) -> Manifest | None:
        self.fetched.append(f"{repo}:{reference}")
        if reference.startswith("sha256:"):  # by digest: whatever the repository holds
            held = (m for (r, _), m in self.tags.items() if r == repo)
            return next((m for m in held if m.digest == reference), None)
        return self.tags.get((repo, reference))

    def has_blob(self, repo: str, digest: str) -> bool:
        return (repo, digest) in self.blobs

    def upload_blob(self, repo: str, digest: str, payload: bytes | IO[bytes]) -> None:
        data = payload if isinstance(payload, bytes) else payload.read()
        self.blobs[repo, digest] = data

    def blob(self, repo: str, digest: str) -> bytes:
        return self.blobs[repo, digest]

    def put_manifest(self, repo: str, tag: str, manifest: Manifest) -> str:
        if tag.endswith(inputsref.SUFFIX):
            missing = [
                d["digest"]
                for d in manifest.body["layers"]
                if (repo, d["digest"]) not in self.blobs
            ]
            assert not missing, f"{repo}:{tag} put before its blobs {missing}"
            self.artifacts.append(f"{repo}:{tag}")
            self.tags[repo, tag] = manifest
            return manifest.digest
        self.events.append(f"tag {repo}:{tag}")
        self.tags[repo, tag] = manifest
        return manifest.digest


class FakeDaemon:
    """Images built in this run, by ref; a push uploads one into the registry."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.images: dict[str, str] = {}
        self.auths: list[Mapping[str, str] | None] = []

    def push(self, ref: str, auth: Mapping[str, str] | None) -> str:
        self.auths.append(auth)
        self.registry.events.append(f"push {ref}")
        return self.registry.holds(ref, self.images[ref])


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def registry(events: list[str]) -> FakeRegistry:
    return FakeRegistry(events)


@pytest.fixture
def daemon(registry: FakeRegistry) -> FakeDaemon:
    return FakeDaemon(registry)


def spec(name: str) -> LayerSpec:
    key = hashlib.sha256(name.encode()).hexdigest()
    return LayerSpec(
        name=name,
        repository=f"{HOST}/shop-{name}",
        key=key,
        parent=None,
        dockerfile=Path("Dockerfile"),
        context=None,
        ignore=(),
        build_args={},
        inputs={},
    )


def outcome(
    name: str,
    *,
    built: bool = False,
    digest: str | None = None,
    image_id: str | None = None,
    forced: bool = False,
) -> LayerOutcome:
    plan = LayerPlan(spec=spec(name), status="build", reasons=(), local_id=None, remote_digest=None)
    return LayerOutcome(plan=plan, built=built, digest=digest, image_id=image_id, forced=forced)


def built_now(daemon: FakeDaemon, name: str, *, forced: bool = False) -> LayerOutcome:
    image_id = "sha256:" + hashlib.sha256(f"built {name}".encode()).hexdigest()
    daemon.images[spec(name).image] = image_id
    return outcome(name, built=True, image_id=image_id, forced=forced)


def in_registry(registry: FakeRegistry, name: str) -> LayerOutcome:
    """A layer the plan found in the registry under its key: nothing built."""
    digest = registry.holds(spec(name).image, f"sha256:{name}-pushed-earlier")
    return outcome(name, digest=digest)


def push(
    daemon: FakeDaemon,
    outcomes: list[LayerOutcome],
    policy: TagPolicy,
    access: RegistryAccess | None = None,
) -> None:
    access = access or RegistryAccess(host=HOST)
    pushing.push_chain(outcomes, access, daemon.registry, policy, push_image=daemon.push)


def test_layers_the_registry_has_are_not_pushed(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    outcomes = [in_registry(registry, name) for name in ("ruby", "base", "app")]
    push(daemon, outcomes, NO_TAGS)
    assert events == []
    assert [(o.pushed, o.tags) for o in outcomes] == [(False, [])] * 3


def test_a_no_op_release_run_writes_nothing(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    outcomes = [in_registry(registry, name) for name in ("ruby", "base", "app")]
    push(daemon, outcomes, RELEASE)
    events.clear()
    registry.fetched.clear()
    again = [in_registry(registry, name) for name in ("ruby", "base", "app")]
    push(daemon, again, RELEASE)
    assert events == []  # every tag already points at its digest: no PUT ...
    assert registry.fetched == []  # ... and no manifest GET either, one HEAD per tag


def test_built_layers_are_pushed_under_their_content_tag(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    outcomes = [built_now(daemon, name) for name in ("ruby", "base", "app")]
    push(daemon, outcomes, NO_TAGS)
    assert events == [f"push {spec(name).image}" for name in ("ruby", "base", "app")]
    for o in outcomes:
        assert o.pushed
        assert o.tags == [o.plan.spec.tag]
        assert o.digest == registry.exists(f"shop-{o.plan.spec.name}", o.plan.spec.tag)
    # Each pushed image's inputs beside it, readable as plan reads them on a fresh machine.
    assert registry.artifacts == [
        f"shop-{name}:{spec(name).tag}{inputsref.SUFFIX}" for name in ("ruby", "base", "app")
    ]
    for name in ("ruby", "base", "app"):
        assert inputsref.load(registry, f"shop-{name}", spec(name).tag) == spec(name).inputs


def test_a_rebuild_identical_to_the_registrys_image_is_not_pushed(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    app = built_now(daemon, "app", forced=True)  # --no-cache, same image id
    assert app.image_id is not None
    digest = registry.holds(spec("app").image, app.image_id)
    push(daemon, [app], NO_TAGS)
    assert events == []
    assert (app.pushed, app.digest) == (False, digest)


def test_an_image_another_run_pushed_meanwhile_is_used(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    app = built_now(daemon, "app")
    theirs = registry.holds(spec("app").image, "sha256:built-by-a-concurrent-ci-job")
    push(daemon, [app], NO_TAGS)
    assert events == []
    assert (app.pushed, app.digest) == (False, theirs)


def test_a_forced_rebuild_unlike_the_registrys_image_is_refused_before_any_push(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    ruby = built_now(daemon, "ruby")
    app = built_now(daemon, "app", forced=True)
    registry.holds(spec("app").image, "sha256:the-first-build")
    with pytest.raises(PushFailedError, match="content tags are immutable"):
        push(daemon, [ruby, app], RELEASE)
    assert events == [f"push {spec('ruby').image}"]  # no tag moved, app's key left alone


def test_a_layer_neither_local_nor_in_the_registry_is_an_error(
    daemon: FakeDaemon, events: list[str]
) -> None:
    with pytest.raises(PushFailedError, match="neither local nor in the registry"):
        push(daemon, [outcome("app")], NO_TAGS)
    assert events == []


def test_moving_tags_are_written_only_after_every_content_tag(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    outcomes = [in_registry(registry, "ruby"), built_now(daemon, "base"), built_now(daemon, "app")]
    push(daemon, outcomes, RELEASE)
    assert events == [
        f"push {spec('base').image}",
        f"push {spec('app').image}",
        "tag shop-app:git-0123456",
        f"tag shop-app:git-{SHA}",
        *(
            f"tag shop-{name}:{tag}"
            for name in ("ruby", "base", "app")
            for tag in ("latest", "main")
        ),
    ]
    ruby, base, app = outcomes
    assert ruby.tags == ["latest", "main"]
    assert base.tags == [base.plan.spec.tag, "latest", "main"]
    assert app.tags == [app.plan.spec.tag, "git-0123456", f"git-{SHA}", "latest", "main"]


def test_a_pull_request_moves_only_the_apps_pr_tag(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    outcomes = [
        in_registry(registry, "ruby"),
        in_registry(registry, "base"),
        built_now(daemon, "app"),
    ]
    push(daemon, outcomes, PULL_REQUEST)
    assert events == [f"push {spec('app').image}", "tag shop-app:pr-5"]


def test_the_apps_git_tags_are_not_written_when_the_target_is_not_the_app(
    daemon: FakeDaemon, events: list[str]
) -> None:
    push(daemon, [built_now(daemon, "ruby"), built_now(daemon, "base")], RELEASE)
    assert not [event for event in events if ":git-" in event]
    assert events[-1] == "tag shop-base:main"


def test_an_immutable_tag_elsewhere_is_left_and_a_moving_tag_is_moved(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str]
) -> None:
    older = registry.holds(f"{HOST}/shop-app:git-0123456", "sha256:an-older-image")
    registry.holds(f"{HOST}/shop-app:latest", "sha256:an-older-image")
    app = built_now(daemon, "app")
    push(
        daemon,
        [app],
        TagPolicy(release=True, app_tags=("git-0123456",), moving=("latest",), app_moving=()),
    )
    assert events == [f"push {spec('app').image}", "tag shop-app:latest"]
    assert registry.exists("shop-app", "git-0123456") == older
    assert registry.exists("shop-app", "latest") == app.digest


def test_a_tag_already_at_the_images_manifest_is_not_rewritten(
    registry: FakeRegistry, events: list[str]
) -> None:
    """Without a digest from the run (write_tag's callers may know none), the tag is compared
    with the manifest under the content tag."""
    app = spec("app")
    registry.holds(app.image, "sha256:app")
    registry.holds(f"{HOST}/shop-app:latest", "sha256:app")
    pushing.write_tag(registry, app, "latest", immutable=False)
    assert events == []
    registry.holds(f"{HOST}/shop-app:latest", "sha256:an-older-app")
    pushing.write_tag(registry, app, "latest", immutable=False)
    assert events == ["tag shop-app:latest"]


class FakeTokens(TokenProvider):
    """ECR tokens: token-1 until a renewal is forced, then token-2."""

    def __init__(self) -> None:  # no ECR to ask: the base __init__ is not run
        self.issued = 0

    def __call__(self, *, force: bool = False) -> Auth:
        if force or self.issued == 0:
            self.issued += 1
        return Auth("AWS", f"token-{self.issued}")


def test_a_refused_push_renews_the_token_once(daemon: FakeDaemon, events: list[str]) -> None:
    real_push = daemon.push

    def refuse_the_first_token(ref: str, auth: Mapping[str, str] | None) -> str:
        if auth is not None and auth["password"] == "token-1":
            daemon.auths.append(auth)
            raise PushFailedError(f"push {ref}: unauthorized: authentication required")
        return real_push(ref, auth)

    access = RegistryAccess(host=HOST, tokens=FakeTokens())
    app = built_now(daemon, "app")
    pushing.push_chain([app], access, daemon.registry, NO_TAGS, push_image=refuse_the_first_token)
    assert [auth and auth["password"] for auth in daemon.auths] == ["token-1", "token-2"]
    assert app.pushed


def test_a_push_error_that_is_not_about_auth_is_not_retried(daemon: FakeDaemon) -> None:
    def fail(ref: str, auth: Mapping[str, str] | None) -> str:
        daemon.auths.append(auth)
        raise PushFailedError(f"push {ref}: no space left on device")

    access = RegistryAccess(host=HOST, tokens=FakeTokens())
    with pytest.raises(PushFailedError, match="no space left"):
        pushing.push_chain(
            [built_now(daemon, "app")], access, daemon.registry, NO_TAGS, push_image=fail
        )
    assert len(daemon.auths) == 1


def test_the_apps_hidden_images_are_pushed_first_bottom_up_unless_the_registry_has_them(
    daemon: FakeDaemon, registry: FakeRegistry, events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The assets image (a fresh machine pulls it instead of precompiling), then the bulk image,
    then the app built FROM them; a hidden image the registry has is not pushed again."""
    assets_image, bulk_image = f"{HOST}/shop-app:assets-aaaaaaaaaaaa", f"{HOST}/shop-app:bulk-b"
    hidden = {
        "assets": AssetsSpec(
            image=assets_image, key="a" * 64, command="bin/rails assets:precompile",
            output="public/assets", packages=(), lockfile=None, ignore=(), files=1, dockerfile="",
        ),
        "bulk": BulkSpec(
            image=bulk_image, key="b" * 64, paths=("app/assets/images",), dest="/app/", flags="",
            ignore=(), files=1,
        ),
    }  # fmt: skip
    daemon.images.update({assets_image: "sha256:assets", bulk_image: "sha256:bulk"})
    monkeypatch.setattr(
        pushing.docker_api,
        "local_image",
        lambda ref: (
            LocalImage(id=daemon.images[ref], labels={}, size=1, repo_digests=())
            if ref in daemon.images
            else None
        ),
    )

    def app_outcome() -> LayerOutcome:
        app = built_now(daemon, "app")
        app.plan = dataclasses.replace(
            app.plan,
            spec=dataclasses.replace(app.plan.spec, assets=hidden["assets"], bulk=hidden["bulk"]),
        )
        return app

    push(daemon, [app_outcome()], NO_TAGS)
    assert events == [f"push {assets_image}", f"push {bulk_image}", f"push {spec('app').image}"]

    events.clear()
    registry.tags.clear()
    registry.holds(assets_image, "sha256:assets")  # pushed by an earlier run
    push(daemon, [app_outcome()], NO_TAGS)
    assert events == [f"push {bulk_image}", f"push {spec('app').image}"]
