"""`imgbuild init` as a user runs it (`python -m buildkit init`, its own process, no server):
exit codes, one-line errors, stderr suggestions, --json on stdout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from rails_apps import rails_app, run_imgbuild, run_init

from buildkit.config import loading


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("imgbuild: error:")]
    assert len(errors) == 1, result.stderr
    assert result.stdout == ""
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_init_in_the_current_directory(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop", gems=("rails", "pg", "puma"))
    result = run_init(root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert (
        f"imgbuild: wrote {root / 'imgbuild.yaml'}: ruby 3.3.8 (from .ruby-version)"
        in result.stderr
    )
    assert "imgbuild: suggestion: the app has no .dockerignore; lines for one" in result.stderr
    assert "imgbuild:   /.bundle" in result.stderr
    config = loading.resolve(root / "imgbuild.yaml", env={})
    assert (config.name, config.base.packages) == ("shop", ("libpq5",))


def test_suggestions_for_an_existing_dockerignore(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop", files={".dockerignore": ".bundle\ncoverage\n"})
    result = run_init(root)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    start = lines.index(
        "imgbuild: suggestion: lines to add to the app's .dockerignore (the reasons are in "
        "imgbuild.yaml):"
    )
    assert lines[start + 1 :][:1] == ["imgbuild:   /vendor/bundle"]
    assert "/.bundle" not in result.stderr


def test_init_with_path_and_flags(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop")
    result = run_init(tmp_path, "shop", "--name", "storefront", "--registry", "127.0.0.1:5000")
    assert result.returncode == 0, result.stderr
    config = loading.resolve(root / "imgbuild.yaml", env={})
    assert (config.name, config.registry) == ("storefront", "127.0.0.1:5000")


def test_global_registry_flag_is_honoured(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop")
    result = run_imgbuild(root, "--registry", "registry.example:443", "init")
    assert result.returncode == 0, result.stderr
    assert loading.resolve(root / "imgbuild.yaml", env={}).registry == "registry.example:443"


def test_global_config_flag_is_refused(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop")
    result = run_imgbuild(root, "-c", "other.yaml", "init")
    assert_one_line_error(result, 3, "-c other.yaml: init writes PATH/imgbuild.yaml")
    assert not (root / "imgbuild.yaml").exists()


def test_json_prints_what_was_detected(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "shop",
        gems=("rails", "nokogiri", "puma"),
        files={"Procfile": "web: bundle exec puma -p $PORT\nworker: bin/jobs\n"},
    )
    result = run_init(root, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["config"] == str(root / "imgbuild.yaml")
    assert data["ruby"]["version"] == "3.3.8"
    assert data["packages"] == ["libxml2", "libxslt1.1"]
    assert data["build_args"] == {"NOKOGIRI_USE_SYSTEM_LIBRARIES": "1"}
    assert data["command"]["value"] == "bundle exec puma -p 3000"
    assert data["processes"] == {"worker": "bin/jobs"}
    assert data["dockerignore"]["exists"] is False


def test_existing_config_exit_3_and_untouched(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop")
    (root / "imgbuild.yaml").write_text("name: mine\n")
    assert_one_line_error(run_init(root), 3, "imgbuild.yaml already exists", "--force")
    assert (root / "imgbuild.yaml").read_text() == "name: mine\n"
    forced = run_init(root, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "imgbuild: replaced" in forced.stderr
    assert loading.resolve(root / "imgbuild.yaml", env={}).name == "shop"


def test_not_a_rails_app_exit_4(tmp_path: Path) -> None:
    (tmp_path / "Gemfile").write_text('gem "sinatra"\n')
    assert_one_line_error(
        run_init(tmp_path), 4, "is not a Rails app: it has no config/application.rb"
    )
    assert not (tmp_path / "imgbuild.yaml").exists()


def test_no_ruby_version_exit_4(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop", ruby_version=None, lock_ruby=None)
    assert_one_line_error(run_init(root), 4, "no Ruby version", "add a .ruby-version")
    assert not (root / "imgbuild.yaml").exists()


def test_partial_ruby_version_exit_4(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop", ruby_version="3.3", lock_ruby=None)
    assert_one_line_error(run_init(root), 4, "only a partial Ruby version ('3.3')")


def test_bad_name_exit_3(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "shop")
    assert_one_line_error(run_init(root, "--name", "Shop App"), 3, "--name: name 'Shop App'")


def test_missing_directory_exit_4(tmp_path: Path) -> None:
    assert_one_line_error(run_init(tmp_path, "nowhere"), 4, "is not a directory")


def test_help_lists_init_and_its_options(tmp_path: Path) -> None:
    listing = run_imgbuild(tmp_path, "--help")
    assert listing.returncode == 0, listing.stderr
    assert "init" in listing.stdout.split("Commands")[-1]
    usage = run_imgbuild(tmp_path, "init", "--help")
    assert usage.returncode == 0, usage.stderr
    for option in ("[PATH]", "--force", "--name", "--registry", "--json"):
        assert option in usage.stdout, option
