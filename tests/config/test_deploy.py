"""`app.processes` and `kustomize:` (config/deploy.py) from real files: the web rule, the
names, the one-line errors with file:line and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from buildkit.config import loading as config
from buildkit.errors import ConfigError

MINIMAL = 'name: shop\nregistry: 127.0.0.1:5000\nruby:\n  version: "3.3.8"\n'
DEFAULT_COMMAND = config.AppConfig.command


def resolve(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "imgbuild.yaml"
    path.write_text(MINIMAL + text)
    (tmp_path / "Gemfile").write_text("")
    return config.resolve(path, env={})


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, text)
    assert "\n" not in info.value.message
    assert info.value.exit_code == 3
    return info.value.message


def line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "imgbuild.yaml").read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def test_without_processes_the_one_process_is_web_the_command(tmp_path: Path) -> None:
    assert dict(resolve(tmp_path, "").app.processes) == {"web": DEFAULT_COMMAND}
    app = resolve(tmp_path, "app:\n  command: bin/web\n").app
    assert (app.command, dict(app.processes)) == ("bin/web", {"web": "bin/web"})


def test_processes_add_to_web_in_file_order(tmp_path: Path) -> None:
    app = resolve(
        tmp_path,
        "app:\n  command: bin/web\n  processes:\n    worker: bundle exec sidekiq\n"
        "    cron: [bin/rails, runner, Cron.run]\n",
    ).app
    assert list(app.processes.items()) == [
        ("web", "bin/web"),
        ("worker", "bundle exec sidekiq"),
        ("cron", "bin/rails runner Cron.run"),
    ]
    assert app.command == "bin/web"


def test_processes_web_is_the_command_when_app_command_is_not_given(tmp_path: Path) -> None:
    app = resolve(tmp_path, "app:\n  processes:\n    worker: bin/jobs\n    web: bin/web\n").app
    assert app.command == "bin/web"
    assert list(app.processes) == ["web", "worker"]


def test_processes_web_equal_to_app_command_is_fine(tmp_path: Path) -> None:
    app = resolve(tmp_path, "app:\n  command: bin/web\n  processes:\n    web: bin/web\n").app
    assert dict(app.processes) == {"web": "bin/web"}


def test_processes_web_contradicting_app_command_exit_3(tmp_path: Path) -> None:
    message = error(tmp_path, "app:\n  command: bin/web\n  processes:\n    web: bundle exec puma\n")
    where = f"imgbuild.yaml:{line_of(tmp_path, 'web: bundle')}:"
    assert where in message
    assert "app.processes.web (bundle exec puma) and app.command (bin/web)" in message
    assert "keep one of them" in message


@pytest.mark.parametrize("name", ["Worker", "sidekiq_low", "-worker", "worker-", "a" * 64, "a.b"])
def test_a_process_name_must_be_a_dns_label(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, f"app:\n  processes:\n    {name}: bin/jobs\n")
    assert f"imgbuild.yaml:{line_of(tmp_path, 'bin/jobs')}:" in message
    assert f"process name '{name}' must be a DNS label" in message


@pytest.mark.parametrize("value", ['""', '"  "', "~", "[]", "{a: b}", "true"])
def test_a_process_command_must_be_a_non_empty_string(tmp_path: Path, value: str) -> None:
    message = error(tmp_path, f"app:\n  processes:\n    worker: {value}\n")
    assert f"imgbuild.yaml:{line_of(tmp_path, 'worker:')}:" in message
    assert "app.processes.worker" in message


@pytest.mark.parametrize("value", ["bin/jobs", "[worker, cron]"])
def test_processes_must_be_a_mapping(tmp_path: Path, value: str) -> None:
    message = error(tmp_path, f"app:\n  processes: {value}\n")
    assert f"imgbuild.yaml:{line_of(tmp_path, 'processes:')}:" in message
    assert "'app.processes' must be a mapping of NAME: command" in message


def test_processes_are_read_only_and_web_follows_the_command(tmp_path: Path) -> None:
    app = resolve(tmp_path, "app:\n  processes:\n    worker: bin/jobs\n").app
    with pytest.raises(TypeError):
        app.processes["worker"] = "other"  # type: ignore[index]
    moved = dataclasses.replace(app, command="bin/other")
    assert dict(moved.processes) == {"web": "bin/other", "worker": "bin/jobs"}


def test_kustomize_name_default_and_given(tmp_path: Path) -> None:
    assert resolve(tmp_path, "").kustomize.name is None
    given = resolve(tmp_path, "kustomize:\n  name: registry.example.com/team/shop-app\n")
    assert given.kustomize.name == "registry.example.com/team/shop-app"


@pytest.mark.parametrize("name", ["shop-app:v1", "shop-app@sha256:" + "a" * 64, "Shop", "a b"])
def test_kustomize_name_is_an_image_name_without_tag(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, f"kustomize:\n  name: {name!r}\n")
    assert f"imgbuild.yaml:{line_of(tmp_path, 'name: ' + repr(name))}:" in message
    assert f"kustomize.name '{name}' is not an image name without tag or digest" in message


def test_kustomize_unknown_key_did_you_mean(tmp_path: Path) -> None:
    message = error(tmp_path, "kustomize:\n  nmae: shop-app\n")
    assert "unknown key 'kustomize.nmae'; did you mean 'name'?" in message
