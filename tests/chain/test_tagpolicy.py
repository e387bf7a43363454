"""Which tags a run writes, by branch and CodeBuild trigger."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.chain import tagpolicy
from buildkit.config import loading as config
from buildkit.source.gitinfo import GitInfo

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    path = tmp_path / "imgbuild.yaml"
    path.write_text("name: shop\nruby:\n  version: '3.3.8'\n")
    return config.resolve(path, env={})


def test_main_branch_moves_latest_and_main(
    cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEBUILD_WEBHOOK_TRIGGER", raising=False)
    policy = tagpolicy.make(cfg, GitInfo(SHA, "main", None))
    assert policy.release
    assert policy.moving_for("ruby") == ("latest", "main")
    assert policy.app_tags == ("git-0123456", f"git-{SHA}")


def test_pull_request_never_moves_release_tags(
    cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEBUILD_WEBHOOK_TRIGGER", "pr/42")
    policy = tagpolicy.make(cfg, GitInfo(SHA, "main", None), release=True)
    assert not policy.release
    assert policy.moving_for("base") == ()
    assert policy.moving_for("app") == ("pr-42",)


def test_feature_branch_gets_branch_tag_only(
    cfg: config.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEBUILD_WEBHOOK_TRIGGER", raising=False)
    policy = tagpolicy.make(cfg, GitInfo(SHA, "feature/Fast cache!", None))
    assert policy.moving_for("app") == ("branch-feature-Fast-cache",)
    assert policy.moving_for("ruby") == ()


def test_no_release_tags_flag(cfg: config.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEBUILD_WEBHOOK_TRIGGER", raising=False)
    assert tagpolicy.make(cfg, GitInfo(SHA, "main", None), release=False).moving == ()


def test_git_tag_build_tags_app(cfg: config.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEBUILD_WEBHOOK_TRIGGER", "tag/v1.2.3")
    policy = tagpolicy.make(cfg, GitInfo(SHA, None, None))
    assert "v1.2.3" in policy.app_tags
    assert not policy.release
