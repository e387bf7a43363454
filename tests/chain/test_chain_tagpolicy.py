"""Tag policy (chain.tagpolicy) cases beyond tests/chain/test_tagpolicy.py: CodeBuild's
variables, the release flag against every trigger, configured release branches, tag-safe names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from chain_shop import write_shop

from buildkit.chain import tagpolicy
from buildkit.config.ecr import TagSettings
from buildkit.config.loading import Config
from buildkit.source.gitinfo import GitInfo

SHA = "0123456789abcdef0123456789abcdef01234567"
GIT_TAGS = ("git-0123456", f"git-{SHA}")
VARIABLES = (
    "CODEBUILD_BUILD_ID",
    "CODEBUILD_WEBHOOK_TRIGGER",
    "CODEBUILD_WEBHOOK_HEAD_REF",
    "CODEBUILD_SOURCE_VERSION",
)


@pytest.fixture
def shop(tmp_path: Path) -> Config:
    return write_shop(tmp_path)


@pytest.fixture(autouse=True)
def outside_codebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it is about (the suite itself may run inside CodeBuild)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def in_codebuild(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CODEBUILD_BUILD_ID", "shop:0d6c0b47-1234")
    return monkeypatch


def tags(policy: tagpolicy.TagPolicy) -> tuple[tuple[str, ...], ...]:
    """(app's immutable extra tags, moving tags of ruby, moving tags of app)"""
    return policy.app_tags, policy.moving_for("ruby"), policy.moving_for("app")


def test_webhook_push_to_the_release_branch(shop: Config, in_codebuild: pytest.MonkeyPatch) -> None:
    in_codebuild.setenv("CODEBUILD_WEBHOOK_TRIGGER", "branch/main")
    policy = tagpolicy.make(shop, GitInfo(SHA, "main", None))
    assert policy.release
    assert tags(policy) == (GIT_TAGS, ("latest", "main"), ("latest", "main"))


def test_webhook_push_to_another_branch(shop: Config, in_codebuild: pytest.MonkeyPatch) -> None:
    in_codebuild.setenv("CODEBUILD_WEBHOOK_TRIGGER", "branch/feature/x")
    policy = tagpolicy.make(shop, GitInfo(SHA, "feature/x", None))
    assert not policy.release
    assert tags(policy) == (GIT_TAGS, (), ("branch-feature-x",))


def test_webhook_pull_request(shop: Config, in_codebuild: pytest.MonkeyPatch) -> None:
    in_codebuild.setenv("CODEBUILD_WEBHOOK_TRIGGER", "pr/123")
    in_codebuild.setenv("CODEBUILD_WEBHOOK_HEAD_REF", "refs/heads/feature/x")
    policy = tagpolicy.make(shop, GitInfo(SHA, "feature/x", None))
    assert not policy.release
    assert tags(policy) == (GIT_TAGS, (), ("pr-123",))  # the PR's tag, not its branch's


def test_webhook_git_tag(shop: Config, in_codebuild: pytest.MonkeyPatch) -> None:
    in_codebuild.setenv("CODEBUILD_WEBHOOK_TRIGGER", "tag/v1")
    policy = tagpolicy.make(shop, GitInfo(SHA, None, None))
    assert not policy.release
    assert tags(policy) == ((*GIT_TAGS, "v1"), (), ())


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param("pr/7", (GIT_TAGS, (), ("pr-7",)), id="pull request"),
        pytest.param("refs/tags/v2.0", ((*GIT_TAGS, "v2.0"), (), ()), id="git tag"),
        pytest.param(
            "refs/heads/main", (GIT_TAGS, ("latest", "main"), ("latest", "main")), id="main"
        ),
    ],
)
def test_build_started_by_hand_reads_the_source_version(
    shop: Config,
    in_codebuild: pytest.MonkeyPatch,
    version: str,
    expected: tuple[tuple[str, ...], ...],
) -> None:
    in_codebuild.setenv("CODEBUILD_SOURCE_VERSION", version)
    assert tags(tagpolicy.make(shop, GitInfo(SHA, "main", None))) == expected


def test_source_version_outside_codebuild_is_ignored(
    shop: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEBUILD_SOURCE_VERSION", "pr/7")
    policy = tagpolicy.make(shop, GitInfo(SHA, "main", None))
    assert policy.release
    assert policy.moving_for("app") == ("latest", "main")


def test_release_flag_moves_latest_on_any_branch_but_never_on_a_pull_request(
    shop: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    feature = tagpolicy.make(shop, GitInfo(SHA, "feature", None), release=True)
    assert tags(feature) == (GIT_TAGS, ("latest",), ("latest", "branch-feature"))
    git_tag = GitInfo(SHA, None, None)
    monkeypatch.setenv("CODEBUILD_WEBHOOK_TRIGGER", "tag/v1")
    assert tags(tagpolicy.make(shop, git_tag, release=True))[1] == ("latest",)
    monkeypatch.setenv("CODEBUILD_WEBHOOK_TRIGGER", "pr/9")
    assert not tagpolicy.make(shop, GitInfo(SHA, "main", None), release=True).release


def test_no_release_tags_on_the_release_branch_keeps_only_immutable_tags(shop: Config) -> None:
    policy = tagpolicy.make(shop, GitInfo(SHA, "main", None), release=False)
    assert not policy.release
    assert tags(policy) == (GIT_TAGS, (), ())


def test_configured_release_branches(shop: Config) -> None:
    config = dataclasses.replace(shop, tags=TagSettings(release_branches=("main", "release")))
    assert tags(tagpolicy.make(config, GitInfo(SHA, "release", None)))[1] == ("latest", "release")
    assert tags(tagpolicy.make(shop, GitInfo(SHA, "release", None)))[1] == ()


def test_detached_head_moves_latest_only(shop: Config) -> None:
    policy = tagpolicy.make(shop, GitInfo(SHA, None, None))
    assert tags(policy) == (GIT_TAGS, ("latest",), ("latest",))


def test_no_commit_means_no_git_tags(shop: Config) -> None:
    assert tagpolicy.make(shop, GitInfo(None, "main", None)).app_tags == ()


@pytest.mark.parametrize(
    ("ref", "tag"),
    [
        ("feature/JIRA-12 fix", "feature-JIRA-12-fix"),
        ("v1.2.3", "v1.2.3"),
        ("-.hidden.-", "hidden"),
        ("///", "unnamed"),
        ("x" * 200, "x" * 128),
    ],
)
def test_refs_become_valid_image_tags(ref: str, tag: str) -> None:
    assert tagpolicy.sanitize(ref) == tag
