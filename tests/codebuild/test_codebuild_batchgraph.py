"""The batch build-graph of several apps (codebuild/batchgraph.py): one node per distinct Ruby
image, per distinct base image and per app, identifiers CodeBuild accepts, edges in order, and
each node pointed at its own config and layer. No Docker: the keys come from the configs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.codebuild import batchgraph, buildspec
from buildkit.config import loading as configmod
from buildkit.errors import ConfigError
from tests.codebuild.test_codebuild_buildspec import validate

#: What CodeBuild's BATCH_SPEC_VALIDATION_ERROR asks of a build identifier.
ACCEPTED = re.compile(r"[A-Za-z0-9_]{1,127}")
API_RUBY = '  configure_opts: ["--disable-install-doc", "--enable-shared"]\n'


def write_app(repo: Path, folder: str, name: str, ruby: str = "", extra: str = "") -> Path:
    """An app of the monorepo: its config (all on one shared Ruby repository) and lockfile."""
    root = repo / folder
    root.mkdir(parents=True)
    (root / "Gemfile").write_text('source "https://rubygems.org"\n')
    (root / "Gemfile.lock").write_text(
        "GEM\n  remote: https://rubygems.org/\n  specs:\n\nPLATFORMS\n  ruby\n\n"
        "DEPENDENCIES\n\nBUNDLED WITH\n   2.5.22\n"
    )
    (root / "imgbuild.yaml").write_text(
        f"name: {name}\n"
        "registry: 127.0.0.1:5000\n"
        f'ruby:\n  version: "3.3.8"\n{ruby}'
        "ecr:\n  repositories: {ruby: mono-ruby}\n"
        "codebuild:\n  install: pip install ./imgbuild\n"
        f"{extra}"
    )
    return root / "imgbuild.yaml"


@pytest.fixture
def monorepo(tmp_path: Path) -> list[Path]:
    """Three apps: shop and admin on one Ruby, api on another configure option."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    return [
        write_app(repo, "apps/shop", "shop"),
        write_app(repo, "apps/admin", "admin"),
        write_app(repo, "apps/api", "api", API_RUBY),
    ]


def configs(paths: list[Path]) -> list[configmod.Config]:
    return [configmod.resolve(path, env={}) for path in paths]


def graph(paths: list[Path]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = batchgraph.render_batch_graph(configs(paths))["build-graph"]
    return entries


def test_shared_ruby_is_one_node_each_base_and_app_its_own(monorepo: list[Path]) -> None:
    entries = graph(monorepo)
    assert [(e["identifier"], e.get("depend-on", [])) for e in entries] == [
        ("shop_ruby", []),
        ("api_ruby", []),
        ("shop_base", ["shop_ruby"]),
        ("admin_base", ["shop_ruby"]),
        ("api_base", ["api_ruby"]),
        ("shop_app", ["shop_base"]),
        ("admin_app", ["admin_base"]),
        ("api_app", ["api_base"]),
    ]


def test_each_node_builds_its_own_layer_of_its_own_config(monorepo: list[Path]) -> None:
    variables = {e["identifier"]: e["env"]["variables"] for e in graph(monorepo)}
    assert variables["shop_ruby"] == {
        "IMGBUILD_LAYER": "ruby",
        "IMGBUILD_CONFIG": "apps/shop/imgbuild.yaml",
    }
    assert variables["admin_base"] == {
        "IMGBUILD_LAYER": "base",
        "IMGBUILD_CONFIG": "apps/admin/imgbuild.yaml",
    }
    assert variables["api_app"] == {
        "IMGBUILD_LAYER": "app",
        "IMGBUILD_CONFIG": "apps/api/imgbuild.yaml",
    }


def test_identifiers_are_accepted_unique_and_depend_only_on_earlier_entries(
    monorepo: list[Path],
) -> None:
    seen: list[str] = []
    for entry in graph(monorepo):
        assert ACCEPTED.fullmatch(entry["identifier"]), entry["identifier"]
        assert all(dep in seen for dep in entry.get("depend-on", [])), entry
        seen.append(entry["identifier"])
    assert len(seen) == len(set(seen))


def test_identifier_sanitises_truncates_and_stays_unique() -> None:
    taken: set[str] = set()
    assert batchgraph.identifier("team/web-shop.v2", "app", taken) == "team_web_shop_v2_app"
    assert batchgraph.identifier("team/web-shop.v2", "app", taken) == "team_web_shop_v2_app_2"
    long = batchgraph.identifier("x" * 300, "base", taken)
    assert len(long) == 127
    assert long.endswith("_base")
    again = batchgraph.identifier("x" * 300, "base", taken)
    assert (len(again), again.endswith("_base_2")) == (127, True)
    assert batchgraph.identifier("---", "ruby", taken) == "app_ruby"


def test_apps_on_separate_ruby_repositories_get_separate_ruby_nodes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    shop = write_app(repo, "shop", "shop")
    admin = write_app(repo, "admin", "admin")
    admin.write_text(admin.read_text().replace("{ruby: mono-ruby}", "{ruby: admin-ruby}"))
    rubies = [e["identifier"] for e in graph([shop, admin]) if "depend-on" not in e]
    assert rubies == ["shop_ruby", "admin_ruby"]


def test_one_config_keeps_the_layer_names(monorepo: list[Path]) -> None:
    entries = graph(monorepo[:1])
    assert [(e["identifier"], e["env"]["variables"]) for e in entries] == [
        ("ruby", {"IMGBUILD_LAYER": "ruby"}),
        ("base", {"IMGBUILD_LAYER": "base"}),
        ("app", {"IMGBUILD_LAYER": "app"}),
    ]


def test_configs_from_two_repositories_or_twice_are_refused(
    monorepo: list[Path], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(elsewhere)], check=True, timeout=30)
    stray = write_app(elsewhere, "web", "web")
    with pytest.raises(ConfigError, match="same repository"):
        graph([monorepo[0], stray])
    with pytest.raises(ConfigError, match="given twice"):
        graph([monorepo[0], monorepo[0]])


def test_render_cli_writes_one_batch_graph_for_several_configs(
    monorepo: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "buildkit", "-c", str(monorepo[0]), "codebuild", "render",
            "--batch-config", str(monorepo[1]), "--batch-config", str(monorepo[2]),
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    batch = yaml.safe_load((out / "batch.yml").read_text())
    assert validate(batch) == []
    assert len(batch["batch"]["build-graph"]) == 8
    assert batch["env"]["variables"]["IMGBUILD_CONFIG"] == "apps/shop/imgbuild.yaml"
    build = batch["phases"]["build"]["commands"][0]
    assert build.startswith(
        'imgbuild -c "$IMGBUILD_CONFIG" ${IMGBUILD_APP:+--app "$IMGBUILD_APP"} '
        '"$IMGBUILD_LAYER" --push '
    )
    pr = yaml.safe_load((out / "pr.yml").read_text())
    assert "batch" not in pr
    assert pr == buildspec.document(configs(monorepo)[0], "pr")


def test_a_verifying_app_alone_verifies_and_its_tests_are_published(
    monorepo: list[Path],
) -> None:
    api = monorepo[2]
    api.write_text(api.read_text() + "verify:\n  smoke:\n    path: /up\n")
    shop, admin, api_config = configs(monorepo)
    doc = buildspec.document(shop, "batch", (admin, api_config))
    verifying = [
        e["identifier"]
        for e in doc["batch"]["build-graph"]
        if e["env"]["variables"].get("IMGBUILD_VERIFY") == "1"
    ]
    assert verifying == ["api_app"]
    assert "${IMGBUILD_VERIFY:+--verify}" in doc["phases"]["build"]["commands"][0]
    assert "tests" in doc["reports"]
    assert validate(doc) == []


# --- an `apps:` config: one file, its apps chosen with --app --------------------------------------


def _apps_repo(tmp_path: Path) -> Path:
    from tests import monorepo as monorepo_layout

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    return monorepo_layout.lay_out(repo)


def test_apps_config_renders_one_graph_whose_entries_name_their_app(tmp_path: Path) -> None:
    """tests/data/monorepo: web and api on one Ruby, worker on another → two Ruby entries, one
    base per distinct key, three apps; every entry carries IMGBUILD_APP for `--app`."""
    config = _apps_repo(tmp_path)
    apps = configmod.resolve_all(config, env={"MONO_PREFIX": "bg"})
    graph = batchgraph.render_batch_graph(apps)["build-graph"]
    layers = [e["env"]["variables"]["IMGBUILD_LAYER"] for e in graph]
    assert layers.count("ruby") == 2
    assert layers.count("app") == 3
    app_entries = [e for e in graph if e["env"]["variables"]["IMGBUILD_LAYER"] == "app"]
    assert [e["env"]["variables"]["IMGBUILD_APP"] for e in app_entries] == ["web", "api", "worker"]
    assert all(e["env"]["variables"]["IMGBUILD_CONFIG"] == "imgbuild.yaml" for e in graph)


def test_render_cli_over_an_apps_config_writes_the_batch_graph_only(tmp_path: Path) -> None:
    config = _apps_repo(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "MONO_PREFIX": "bg"}
    argv = [sys.executable, "-m", "buildkit", "-c", str(config), "codebuild", "render"]
    result = subprocess.run(
        [*argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["batch.yml"]
    assert "pr/main need --app NAME" in result.stderr
    assert validate(yaml.safe_load((out / "batch.yml").read_text())) == []
    one = subprocess.run(
        [*argv[:-2], "--app", "api", "codebuild", "render", "--out", str(tmp_path / "api")],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    main = yaml.safe_load((tmp_path / "api" / "main.yml").read_text())
    assert main["env"]["variables"]["IMGBUILD_APP"] == "api"


@pytest.mark.parametrize(("app", "expected"), [("api", ["--app", "api"]), ("", [])])
def test_a_node_command_selects_its_app_only_when_it_has_one(app: str, expected: list[str]) -> None:
    """The command as bash runs it in the entry: --app only where IMGBUILD_APP is set."""
    command = buildspec._imgbuild("app", "--push").replace("imgbuild", "printf '%s\\n'", 1)
    env = {"PATH": "/usr/bin:/bin", "IMGBUILD_CONFIG": "imgbuild.yaml"}
    if app:
        env["IMGBUILD_APP"] = app
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, check=True, timeout=30
    ).stdout.split()
    assert out == ["-c", "imgbuild.yaml", *expected, "app", "--push"]


def test_an_apps_config_project_allows_its_whole_graph_and_its_role_every_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch project and role one app's `codebuild apply` creates run the whole graph:
    CodeBuild refuses a batch of more builds than maximumBuildsAllowed, and the one role
    pushes every app's images."""
    from buildkit.codebuild import project

    config = _apps_repo(tmp_path)
    with config.open("a") as handle:
        handle.write(
            "codebuild:\n  github: https://github.com/example/mono\n  batch: true\n"
            "  create_role: true\n"
        )
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    monkeypatch.setenv("MONO_PREFIX", "bg")  # the siblings are read with the process's env
    web = configmod.resolve(config, configmod.Overrides(registry=ecr), app="web")
    account = project.Account("123456789012", "eu-west-1")
    batch = next(s for s in project.projects(web, account) if s.kind == "batch")
    entries = len(batchgraph.render_batch_graph(batchgraph.siblings(web))["build-graph"])
    assert entries == 8  # two Rubies, three bases, three apps
    assert batch.params["buildBatchConfig"]["restrictions"]["maximumBuildsAllowed"] == entries
    repositories = {arn.rsplit("/", 1)[1] for arn in project.ecr_repositories(web, account)}
    assert repositories == {
        "bg-ruby",
        *(f"bg-{app}-{layer}" for app in ("web", "api", "worker") for layer in ("base", "app")),
    }
