"""P9-JOBS: two apps of one config (docs/monorepo.md), both on one Ruby, whose bases and apps
are all stale: one `imgbuild app --push --jobs 2` vs the same with `--jobs 1`, alternating.

Each sample edits a comment in both apps' Gemfiles (a new nonce), which changes both base keys:
each app's base runs `bundle install` again (its vendored gems, tinynative compiled) and its app
is built on the new base, then both chains are pushed (CI's run). The shared Ruby is up to date
(built once in the setup, not measured).
"""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import tools
from cases import Options, Row, _alternate, _s
from tools import BENCH_HOME, REPO_ROOT, VENV, BenchError, dev_env, run

APPS = ("web", "api")
# @SUFFIX@: the engine's suffix (tools.EngineChoice): each engine builds and pushes its own images.
CONFIG = """\
# bench P9-JOBS: two copies of examples/hello sharing one Ruby (bench/jobs_case.py)
name: bench-mono@SUFFIX@
registry: ${IMGBUILD_DEV_REGISTRY:-127.0.0.1:5000}
base_image: ${IMGBUILD_DEV_BASE_IMAGE:-debian:bookworm-slim}
ruby:
  version: "3.3.8"
  source:
    path: ${IMGBUILD_DEV_HOME:-~/.cache/imgbuild-dev}/ruby/ruby-3.3.8.tar.gz
  ruby_build: ${IMGBUILD_DEV_HOME:-~/.cache/imgbuild-dev}/ruby-build
base:
  packages: [curl]
app:
  command: ruby app.rb
  port: 8080
apps:
  web:
    name: bench-mono@SUFFIX@-web
    app: {context: web}
  api:
    name: bench-mono@SUFFIX@-api
    app: {context: api}
"""


class Monorepo:
    def __init__(self) -> None:
        self.suffix = tools.CURRENT_ENGINE.suffix
        workdir = BENCH_HOME / f"monorepo{self.suffix}"
        self.root = workdir / "repo"
        self.env = {**dev_env(), "IMGBUILD_CACHE_DIR": str(workdir / "imgbuild-cache")}
        self.env["IMGBUILD_SERVER"] = "off"
        self.env.pop("IMGBUILD_REGISTRY", None)

    def lay_out(self) -> None:
        """A fresh copy of the two apps (the Gemfiles' nonces start over each run)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        for app in APPS:
            shutil.copytree(
                REPO_ROOT / "examples" / "hello",
                self.root / app,
                ignore=shutil.ignore_patterns("gems-src"),
            )
        config = CONFIG.replace("@SUFFIX@", self.suffix)
        (self.root / "imgbuild.yaml").write_text(config, encoding="utf-8")

    def imgbuild(self, *args: str) -> tuple[float, Any]:
        import json

        argv = [str(VENV / "bin" / "imgbuild"), "-c", str(self.root / "imgbuild.yaml")]
        seconds, out = run([*argv, *args, "--json"], env=self.env, cwd=self.root)
        start = out.rfind("\n{\n")
        return seconds, json.loads(out[start + 1 :]) if start >= 0 else {}

    def make_stale(self) -> None:
        nonce = uuid.uuid4().hex[:12]
        for app in APPS:
            gemfile = self.root / app / "Gemfile"
            lines = [ln for ln in gemfile.read_text().splitlines() if "bench nonce" not in ln]
            gemfile.write_text("\n".join([*lines, f"# bench nonce {nonce}"]) + "\n")

    def stale_build(self, jobs: int) -> float:
        self.make_stale()
        seconds, doc = self.imgbuild("app", "--push", "--jobs", str(jobs))
        built = [image for image in doc.get("built", []) if "-ruby:" not in image]
        if len(built) != 2 * len(APPS):
            raise BenchError(f"P9-JOBS: --jobs {jobs} built {built}, not both bases and apps")
        return seconds


def p9_jobs(opts: Options) -> list[Row]:
    repo = Monorepo()
    repo.lay_out()
    print("… monorepo: setting up (the shared Ruby and both chains, not measured)", flush=True)
    repo.imgbuild("app", "--push")
    two, one = _alternate(opts.pairs, lambda: repo.stale_build(2), lambda: repo.stale_build(1))
    return [
        Row(
            "P9-JOBS",
            "monorepo",
            _s(two),
            _s(one),
            two.median / one.median,
            "≤ 1.0",
            note="imgbuild column: `app --push --jobs 2`, peer: `--jobs 1`; two apps on one Ruby, "
            "both bases (a Gemfile edit each) and apps stale",
        )
    ]
