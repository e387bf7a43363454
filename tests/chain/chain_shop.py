"""A small Rails-like app and its config, for the chain's unit tests (no daemon, no registry).

Not a conftest.py: tests/run/test_staging.py imports the top-level `conftest` by name, and a second
conftest.py would take that name over. Test modules here import this one as `chain_shop` (pytest
puts their directory on sys.path)."""

from __future__ import annotations

from pathlib import Path

from buildkit.config import loading as configmod

CONFIG = """\
name: shop
registry: reg.test:5000
ruby:
  version: "3.3.8"
base:
  packages: [curl]
app:
  command: ruby app.rb
  port: 8080
"""

FILES = {
    "Gemfile": 'source "https://rubygems.org"\ngem "rack"\n',
    "Gemfile.lock": (
        "GEM\n  specs:\n    rack (3.1.8)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rack\n"
    ),
    "vendor/cache/rack-3.1.8.gem": "gem bytes\n",
    "app.rb": 'puts "hello"\n',
    "lib/greeting.rb": "GREETING = 'hi'\n",
    "README.md": "# shop\n",
    ".dockerignore": "*.md\n",  # like the example app's: docs are not in the image
    "imgbuild.yaml": CONFIG,
}


def write_shop(tmp_path: Path) -> configmod.Config:
    """The app under tmp_path/shop, with imgbuild's cache dir under tmp_path/cache."""
    root = tmp_path / "shop"
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {"IMGBUILD_CACHE_DIR": str(tmp_path / "cache")}
    return configmod.resolve(root / "imgbuild.yaml", env=env)
