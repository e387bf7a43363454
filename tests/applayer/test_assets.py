"""The app's precompiled assets in an image of their own (assets.py): config, keys, the generated
Dockerfile, the chain around it, and the real build on a small fake Rails app."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from buildkit import cachedir
from buildkit.applayer import assets
from buildkit.chain import layers
from buildkit.chain.model import LayerSpec
from buildkit.config import loading as configmod
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import ConfigError, InputError
from buildkit.run import staging
from tests.conftest import Project, layers_by_name

APP_DOCKERFILE = (Path(__file__).resolve().parents[2] / "images" / "app" / "Dockerfile").read_text()
BASE_KEY = "b" * 64
FILES = {
    "bin/rails": "sha256:rails+x",
    "Gemfile": "sha256:gemfile",
    "Gemfile.lock": "sha256:lock",
    "app/assets/stylesheets/application.css": "sha256:css",
    "app/javascript/application.js": "sha256:js",
    "app/models/user.rb": "sha256:model",
    "config/importmap.rb": "sha256:importmap",
    "config/routes.rb": "sha256:routes",
}


def spec(
    files: dict[str, str] = FILES,
    settings: configmod.AssetsConfig | None = None,
    base_key: str = BASE_KEY,
    dockerfile: str = APP_DOCKERFILE,
) -> assets.AssetsSpec:
    found = assets.spec_for(
        settings=settings or configmod.AssetsConfig(),
        files=files,
        base_key=base_key,
        app_dockerfile_text=dockerfile,
        repository="reg.test:5000/shop-app",
        ignore=(".git", "*.md"),
    )
    assert found is not None
    return found


# -- the key ---------------------------------------------------------------------------------


def test_the_key_moves_with_an_asset_input_and_not_with_ruby() -> None:
    first = spec()
    assert first.image == f"reg.test:5000/shop-app:assets-{first.key[:12]}"
    assert first.files == 4  # application.css, application.js, importmap.rb, Gemfile.lock
    for rel in ("app/assets/stylesheets/application.css", "config/importmap.rb", "Gemfile.lock"):
        assert spec({**FILES, rel: "sha256:edited"}).key != first.key, rel
    for rel in ("app/models/user.rb", "config/routes.rb", "bin/rails"):
        assert spec({**FILES, rel: "sha256:edited"}).key == first.key, rel
    assert spec({**FILES, "app/models/order.rb": "sha256:new"}).key == first.key
    assert spec({**FILES, "app/assets/images/logo.png": "sha256:new"}).key != first.key


def test_the_key_moves_with_the_base_key_command_output_and_packages() -> None:
    first = spec()
    assert spec(base_key="c" * 64).key != first.key
    for changed in (
        configmod.AssetsConfig(command="bin/rails assets:precompile --trace"),
        configmod.AssetsConfig(output="public/packs"),
        configmod.AssetsConfig(packages=("libvips42",)),
    ):
        assert spec(settings=changed).key != first.key, changed


def test_inputs_are_dockerignore_patterns() -> None:
    settings = configmod.AssetsConfig(inputs=("app/assets", "!app/assets/builds", "config/*.rb"))
    first = spec(settings=settings)
    assert spec({**FILES, "config/routes.rb": "sha256:x"}, settings).key != first.key
    assert spec({**FILES, "config/locales/en.rb": "sha256:x"}, settings).key == first.key
    assert spec({**FILES, "app/assets/builds/tailwind.css": "sha256:x"}, settings).key == first.key
    assert spec({**FILES, "Gemfile.lock": "sha256:x"}, settings).key == first.key  # not listed
    with pytest.raises(ConfigError, match=r"app\.assets\.inputs: .*!"):
        spec(settings=configmod.AssetsConfig(inputs=("!",)))


# -- the Dockerfile --------------------------------------------------------------------------


def test_the_dockerfile_precompiles_in_a_stage_and_keeps_only_the_output() -> None:
    found = spec()
    assert found.packages == ()
    assert found.lockfile is None
    assert found.dockerfile.splitlines()[1:] == [
        "ARG BASE_IMAGE",
        "FROM ${BASE_IMAGE} AS precompile",
        "USER root",
        "ENV RAILS_ENV=production SECRET_KEY_BASE_DUMMY=1",
        "WORKDIR /app",
        "COPY . /app",
        "RUN bin/rails assets:precompile",
        "RUN test -d public/assets || { echo 'imgbuild: bin/rails assets:precompile wrote no "
        "public/assets (app.assets.output)' >&2; exit 1; }",
        "FROM ${BASE_IMAGE}",
        'COPY --from=precompile ["/app/public/assets", "/app/public/assets"]',
    ]
    # The precompile's context: the app's ignores, and no stale local output.
    assert found.ignore == (".git", "*.md", "public/assets")


def test_node_comes_with_package_json_and_installs_from_the_lockfile() -> None:
    node = {**FILES, "package.json": "sha256:p"}
    extra = configmod.AssetsConfig(packages=("libvips42",))
    yarn = spec({**node, "yarn.lock": "sha256:y", "package-lock.json": "sha256:n"}, extra)
    assert yarn.packages == ("libvips42", "nodejs", "yarnpkg")
    assert yarn.lockfile == "yarn.lock"
    lines = yarn.dockerfile.splitlines()
    assert (
        "RUN apt-get update && apt-get install -y --no-install-recommends libvips42 nodejs "
        "yarnpkg && rm -rf /var/lib/apt/lists/*"
    ) in lines
    copy = lines.index('COPY ["package.json", "yarn.lock", "/app/"]')
    assert lines[copy + 1].endswith("yarn install --frozen-lockfile")
    assert lines[copy + 2] == "COPY . /app"  # the install is reused by a stylesheet edit
    assert yarn.ignore[-2:] == ("public/assets", "node_modules")  # installed here, not copied

    npm = spec({**node, "package-lock.json": "sha256:n"})
    assert npm.packages == ("nodejs", "npm")
    assert "RUN npm ci" in npm.dockerfile.splitlines()

    for files in (node, {**node, "pnpm-lock.yaml": "sha256:p"}):
        bare = spec(files)
        assert bare.packages == ("nodejs",)
        assert bare.lockfile is None
        assert "COPY [" not in bare.dockerfile
        assert "node_modules" not in bare.ignore  # nothing installs them: the context's are used
    assert spec({**node, "yarn.lock": "sha256:y"}).key != spec(node).key


def test_the_output_lands_where_the_context_copy_does() -> None:
    text = (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nENV RAILS_ENV=staging\nWORKDIR /srv\n"
        "WORKDIR shop\nCOPY --chown=app:app . .\nUSER app\n"
    )
    lines = spec(dockerfile=text).dockerfile.splitlines()
    env = lines.index("ENV RAILS_ENV=production SECRET_KEY_BASE_DUMMY=1")
    assert lines[env + 1 : env + 4] == ["ENV RAILS_ENV=staging", "WORKDIR /srv", "WORKDIR shop"]
    assert "COPY . /srv/shop" in lines
    assert lines[-1] == (
        'COPY --from=precompile --chown=app:app ["/srv/shop/public/assets", '
        '"/srv/shop/public/assets"]'
    )


@pytest.mark.parametrize(
    "text",
    [
        "FROM x\nCOPY Gemfile /app/\nCOPY lib /app/lib\n",  # no whole-context copy
        "FROM x\nCOPY . /app/\nCOPY . /srv/\n",  # two
        "FROM x\nCOPY . .\n",  # the base image's WORKDIR: not known here
        "FROM x\nARG ROOT=/srv\nWORKDIR ${ROOT}\nCOPY . .\n",  # a variable
    ],
)
def test_no_known_destination_means_no_assets_image(text: str) -> None:
    assert assets.destination(text) is None
    assert (
        assets.spec_for(
            settings=configmod.AssetsConfig(),
            files=FILES,
            base_key=BASE_KEY,
            app_dockerfile_text=text,
            repository="r/shop-app",
            ignore=(),
        )
        is None
    )


@pytest.mark.parametrize(
    ("present", "precompile", "expected"),
    [
        ({"bin/rails", "app/assets"}, None, True),
        ({"bin/rails", "app/javascript"}, None, True),
        ({"bin/rails", "config/importmap.rb"}, None, True),
        ({"bin/rails"}, None, False),  # an API-only app
        ({"app/assets", "app/javascript"}, None, False),  # not Rails
        ({"bin/rails", "app/assets"}, False, False),
        (set(), True, True),
    ],
)
def test_auto_wants_rails_and_an_asset_source(
    present: set[str], precompile: bool | None, expected: bool
) -> None:
    settings = configmod.AssetsConfig(precompile=precompile)
    assert assets.enabled(settings, present.__contains__) is expected


# -- config ----------------------------------------------------------------------------------

CONFIG = """\
name: shop
registry: reg.test:5000
ruby:
  version: "3.3.8"
app:
  command: bin/rails server
"""


def config_with(tmp_path: Path, assets_yaml: str = "") -> Path:
    path = tmp_path / "imgbuild.yaml"
    path.write_text(CONFIG + assets_yaml)
    return path


def test_assets_config_defaults_and_values(tmp_path: Path) -> None:
    defaults = configmod.resolve(config_with(tmp_path), env={}).app.assets
    assert defaults == configmod.AssetsConfig()
    assert defaults.precompile is None
    assert defaults.command == "bin/rails assets:precompile"
    assert defaults.output == "public/assets"
    assert "app/assets" in defaults.inputs
    assert "Gemfile.lock" in defaults.inputs
    text = """\
  assets:
    precompile: true
    inputs: [app/assets, ./app/views/, "!app/assets/builds"]
    command: [bin/rails, "assets:precompile", --trace]
    output: ./public/packs/
    packages: [libvips42, nodejs, libvips42]
"""
    got = configmod.resolve(config_with(tmp_path, text), env={}).app.assets
    assert got == configmod.AssetsConfig(
        precompile=True,
        inputs=("app/assets", "app/views", "!app/assets/builds"),
        command="bin/rails assets:precompile --trace",
        output="public/packs",
        packages=("libvips42", "nodejs"),
    )
    off = "  assets:\n    precompile: false\n"
    assert configmod.resolve(config_with(tmp_path, off), env={}).app.assets.precompile is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  assets:\n    precompil: true\n", r"app\.assets\.precompil'; did you mean 'precompile'"),
        ("  assets:\n    ouput: x\n", "did you mean 'output'"),
        ("  assets: true\n", r"'app\.assets' must be a mapping"),
        ("  assets:\n    precompile: always\n", "must be auto, true or false, not 'always'"),
        ("  assets:\n    precompile: 1\n", "must be auto, true or false, not 1"),
        ("  assets:\n    output: /public/assets\n", "must be a path inside the app context"),
        ("  assets:\n    output: [a, b]\n", "must be a non-empty string"),
        ("  assets:\n    inputs: [../shared]\n", "must be a path inside the app context"),
        ("  assets:\n    packages: [Node_JS]\n", "is not a Debian package name"),
        ("  assets:\n    command: ''\n", "must be a non-empty string"),
    ],
)
def test_assets_config_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = config_with(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        configmod.resolve(path, env={})
    assert f"{path}:7:" in info.value.message or f"{path}:8:" in info.value.message


# -- the chain around it ---------------------------------------------------------------------

RAILS_APP = {
    "Gemfile": 'source "https://rubygems.org"\ngem "rails"\n',
    "Gemfile.lock": (
        "GEM\n  specs:\n    rails (7.2.2)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rails\n"
    ),
    "bin/rails": "#!/bin/sh\n",
    "app/assets/stylesheets/application.css": "body { color: red }\n",
    "app/assets/images/logo.png": "png",
    "app/models/user.rb": "class User; end\n",
    "config/routes.rb": "Rails.application.routes.draw {}\n",
    "node_modules/esbuild/index.js": "// installed locally\n",
    "public/assets/application-0ld.css": "stale\n",
    "README.md": "# shop\n",
    ".dockerignore": "*.md\n",
}


def rails_app(
    tmp_path: Path,
    app_yaml: str = "",
    *,
    files: dict[str, str] | None = None,
    without: tuple[str, ...] = (),
) -> configmod.Config:
    """RAILS_APP (less the files `without` names, plus `files`) under tmp_path/shop, its config
    CONFIG + `app_yaml` (more keys of the app section)."""
    root = tmp_path / "shop"
    wanted = {**RAILS_APP, **(files or {})}
    for name, text in wanted.items():
        if name.startswith(without):
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config_with(root, app_yaml)
    env = {"IMGBUILD_CACHE_DIR": str(tmp_path / "cache")}
    return configmod.resolve(root / "imgbuild.yaml", env=env)


def app_of(config: configmod.Config) -> LayerSpec:
    return layers.chain(config)[2]


def test_a_rails_app_builds_on_its_assets_image(tmp_path: Path) -> None:
    app = app_of(rails_app(tmp_path))
    assert app.assets is not None
    assert app.parent is not None
    assert app.inputs["assets"] == f"sha256:{app.assets.key}"
    # base -> assets -> bulk (app/assets/images) -> app
    assert app.bulk is not None
    assert app.build_args["BASE_IMAGE"] == app.bulk.image
    assert app.assets.image.startswith(f"{app.repository}:assets-")
    # The app's context: no node_modules, no local public/assets, neither in the key's files.
    # (After the app's .dockerignore, imgbuild's app Dockerfile leaves out tmp/, log/, storage/.)
    runtime = layers.RUNTIME_PATTERNS
    assert app.ignore[-4 - len(runtime) : -1] == ("*.md", *runtime, "node_modules", "public/assets")
    assert "file:app/models/user.rb" in app.inputs
    kept = [k for k in app.inputs if k.startswith(("file:node_modules", "file:public/"))]
    assert kept == ["file:public/"]  # public/ itself, sent empty: the COPY makes it
    # The precompile's context: the app's ignores, no stale output; the local node_modules stay
    # (no lockfile: nothing installs them).
    assert app.assets.ignore[-2 - len(runtime) :] == ("*.md", *runtime, "public/assets")


def test_a_ruby_edit_keeps_the_assets_a_stylesheet_or_gemfile_lock_edit_moves_them(
    tmp_path: Path,
) -> None:
    config = rails_app(tmp_path)
    root = config.app.context

    def keys() -> tuple[str, str, str, str]:
        _, base, app = layers.chain(config)
        assert app.assets is not None
        assert app.bulk is not None
        return base.key, app.assets.key, app.bulk.key, app.key

    first = keys()
    (root / "app/models/user.rb").write_text("class User; def name; end; end\n")
    ruby = keys()
    assert ruby[:3] == first[:3]  # base, assets and bulk reused
    assert ruby[3] != first[3]
    (root / "app/assets/stylesheets/application.css").write_text("body { color: blue }\n")
    css = keys()
    assert css[0] == first[0]
    assert css[1] != ruby[1]
    assert css[2] != ruby[2]  # the bulk is built FROM the assets image
    assert css[3] != ruby[3]
    (root / "Gemfile.lock").write_text(
        "GEM\n  specs:\n    rails (7.2.3)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rails\n"
    )
    lock = keys()
    assert all(after != before for after, before in zip(lock, css, strict=True))
    (root / "node_modules/esbuild/index.js").write_text("// reinstalled\n")
    (root / "public/assets/application-0ld.css").write_text("staler\n")
    assert keys() == lock


def test_the_gemfile_lock_reaches_the_assets_key_through_the_base_key(tmp_path: Path) -> None:
    config = rails_app(tmp_path, "  assets:\n    inputs: [app/assets]\n")
    first = app_of(config).assets
    (config.app.context / "Gemfile.lock").write_text(
        "GEM\n  specs:\n    rails (7.2.3)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rails\n"
    )
    second = app_of(config).assets
    assert first is not None
    assert second is not None
    assert second.files == first.files == 2  # application.css and logo.png: no Gemfile.lock
    assert second.key != first.key


def test_an_app_without_assets_is_built_as_before(tmp_path: Path) -> None:
    off = app_of(rails_app(tmp_path / "off", "  assets:\n    precompile: false\n"))
    assert off.assets is None
    assert "assets" not in off.inputs
    assert "node_modules" not in off.ignore
    assert "file:node_modules/esbuild/index.js" in off.inputs  # the context as it always was
    assert off.bulk is not None
    assert off.build_args["BASE_IMAGE"] == off.bulk.image
    assert off.bulk.paths == ("app/assets/images", "public/assets")  # public/assets in bulk
    api = rails_app(tmp_path / "api", without=("app/assets",))  # auto: no asset sources
    assert app_of(api).assets is None
    assert "node_modules" not in app_of(api).ignore
    ignored = rails_app(tmp_path / "ignored", files={".dockerignore": "*.md\nbin/rails\n"})
    assert app_of(ignored).assets is None  # auto: bin/rails is not in the context


def test_a_dockerfile_without_a_known_destination(tmp_path: Path) -> None:
    custom = {"Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app /app/app\n"}
    yaml = "  dockerfile: Dockerfile\n"
    app = app_of(rails_app(tmp_path / "auto", yaml, files=custom))
    assert app.assets is None  # auto: that Dockerfile precompiles in its own way
    assert "node_modules" not in app.ignore
    forced = rails_app(tmp_path / "on", yaml + "  assets:\n    precompile: true\n", files=custom)
    with pytest.raises(InputError, match=r"app\.assets\.precompile is true, but .* single `COPY"):
        app_of(forced)


def test_the_assets_dockerfile_is_staged_beside_its_ignore_file(tmp_path: Path) -> None:
    config = rails_app(tmp_path)
    app = app_of(config)
    assert app.assets is not None
    path = staging.stage_assets_dockerfile(config, app)
    assert path == cachedir.dockerfile_dir(config.cache_dir, app.repository, "assets") / (
        "Dockerfile"
    )
    assert path.read_text() == app.assets.dockerfile
    ignore = (path.parent / "Dockerfile.dockerignore").read_text().splitlines()
    runtime = list(layers.RUNTIME_PATTERNS)
    assert ignore[-2 - len(runtime) :] == ["*.md", *runtime, "public/assets"]
    assert "node_modules" not in ignore


# -- the real build --------------------------------------------------------------------------

# A stand-in for Rails' bin/rails: `assets:precompile` copies each stylesheet into public/assets
# under a digested name, like Propshaft, and leaves node_modules and tmp/cache/assets behind in
# its stage, like jsbundling and Sprockets. `.run` is new on every run of it.
FAKE_RAILS = """\
#!/bin/sh
set -e
[ "$1" = assets:precompile ] || { echo "fake rails: $*" >&2; exit 1; }
[ "$RAILS_ENV" = production ] && [ "$SECRET_KEY_BASE_DUMMY" = 1 ]
mkdir -p public/assets node_modules/esbuild tmp/cache/assets
echo installed > node_modules/esbuild/index.js
echo cached > tmp/cache/assets/entry
for css in app/assets/stylesheets/*.css; do
  name=$(basename "$css" .css)
  cp "$css" "public/assets/$name-$(sha256sum "$css" | cut -c1-8).css"
done
head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n' > public/assets/.run
echo "fake rails: precompiled $(ls public/assets | wc -l) file(s)"
"""


def _fake_rails(project: Project) -> Path:
    """The example app made a Rails app with one stylesheet (unique to this run, so its assets
    key is new), a local node_modules and a stale local public/assets."""
    root = project.root
    rails = root / "bin" / "rails"
    rails.parent.mkdir()
    rails.write_text(FAKE_RAILS)
    rails.chmod(rails.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    css = root / "app" / "assets" / "stylesheets" / "application.css"
    css.parent.mkdir(parents=True)
    css.write_text(f"/* {os.urandom(8).hex()} */\nbody {{ color: red }}\n")
    (root / "node_modules" / "leftpad").mkdir(parents=True)
    (root / "node_modules" / "leftpad" / "index.js").write_text("// local\n")
    (root / "public" / "assets").mkdir(parents=True)
    (root / "public" / "assets" / "application-0ld.css").write_text("stale\n")
    return css


def _compiled_name(css: Path) -> str:
    digest = subprocess.run(
        ["sha256sum", str(css)], capture_output=True, text=True, check=True
    ).stdout[:8]
    return f"application-{digest}.css"


def _look_inside(image: str) -> tuple[set[str], str, list[str]]:
    """(files in /app/public/assets, the precompile's .run stamp, the unwanted paths present)."""
    script = (
        "cd /app; ls -A public/assets; cat public/assets/.run; echo; "
        "for p in node_modules tmp/cache/assets; do [ ! -e $p ] || echo found $p; done"
    )
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    found = [line.removeprefix("found ") for line in out if line.startswith("found ")]
    listing = [line for line in out if not line.startswith("found ")]
    return set(listing[:-1]), listing[-1], found


def _image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def _assets_image(project: Project) -> str:
    config = configmod.resolve(project.config, env=project.env())
    app = layers.chain(config)[2]
    assert app.assets is not None
    return app.assets.image


@pytest.mark.docker
@pytest.mark.slow
def test_assets_are_precompiled_once_and_reused_by_a_ruby_edit(project: Project) -> None:
    css = _fake_rails(project)
    first = project.run("app", "--push", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    assets_image = _assets_image(project)
    assert f"building its assets image {assets_image}" in first.stderr
    assert f"pushing its assets image {assets_image}" in first.stderr
    host, repo, tag = split_ref(assets_image)
    assert RegistryClient(host).exists(repo, tag) is not None  # for a fresh machine to pull
    app = layers_by_name(json.loads(first.stdout))["app"]
    compiled, run, unwanted = _look_inside(app["image"])
    assert compiled == {".run", _compiled_name(css)}  # not the stale local application-0ld.css
    assert unwanted == []  # neither the stage's node_modules and cache nor the local ones
    assets_id = _image_id(assets_image)

    # A Ruby-only edit: the app alone is built, on the same precompiled assets.
    greeting = project.root / "lib" / "greeting.rb"
    greeting.write_text(greeting.read_text() + "# an edit\n")
    second = project.run("app", "--push", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "assets image" not in second.stderr  # neither built nor pulled
    assert _assets_image(project) == assets_image
    assert _image_id(assets_image) == assets_id
    doc = layers_by_name(json.loads(second.stdout))
    assert [doc[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]
    assert doc["app"]["image"] != app["image"]
    assert _look_inside(doc["app"]["image"])[1] == run  # not precompiled again

    # A stylesheet edit: the assets and the app are built again.
    css.write_text(css.read_text() + "a { color: blue }\n")
    third = project.run("app", "--push", "--json")
    assert third.returncode == 0, third.stderr[-3000:]
    new_assets = _assets_image(project)
    assert new_assets != assets_image
    assert f"building its assets image {new_assets}" in third.stderr
    doc = layers_by_name(json.loads(third.stdout))
    assert [doc[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]
    compiled, new_run, unwanted = _look_inside(doc["app"]["image"])
    assert compiled == {".run", _compiled_name(css)}
    assert new_run != run
    assert unwanted == []

    # A machine without the assets image (a fresh CI runner) assembles the app on the registry's
    # assets image (run/native.py): neither precompiled nor pulled.
    subprocess.run(["docker", "rmi", new_assets], capture_output=True, check=True, timeout=60)
    greeting.write_text(greeting.read_text() + "# another edit\n")
    fourth = project.run("app", "--push", "--json")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert f"on {new_assets} (no daemon)" in fourth.stderr
    assert "assets image" not in fourth.stderr.replace(f"on {new_assets}", "")
    doc = layers_by_name(json.loads(fourth.stdout))
    assert doc["app"]["path"] == "native"
    assert _look_inside(doc["app"]["image"])[1] == new_run

    # Built by BuildKit there (IMGBUILD_NATIVE=off), it pulls the assets image, not precompile.
    subprocess.run(["docker", "rmi", new_assets], capture_output=True, check=False, timeout=60)
    greeting.write_text(greeting.read_text() + "# a third edit\n")
    fifth = project.run("app", "--push", "--json", extra_env={"IMGBUILD_NATIVE": "off"})
    assert fifth.returncode == 0, fifth.stderr[-3000:]
    assert f"pulling its assets image {new_assets}" in fifth.stderr
    assert "building its assets image" not in fifth.stderr
    doc = layers_by_name(json.loads(fifth.stdout))
    assert (doc["app"]["path"], doc["app"]["path_reason"]) == ("buildkit", "IMGBUILD_NATIVE=off")
    assert _look_inside(doc["app"]["image"])[1] == new_run
