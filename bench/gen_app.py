"""Generate the benchmark's larger Rails-like app and its synthetic gem set.

    python bench/gen_app.py large DEST      # source tree + gems + Gemfile.lock (DEST/app)
    python bench/gen_app.py extras APPDIR   # only the P4 "extra" gems, into APPDIR/vendor/cache

The tree is deterministic (seeded): ~10k kept files / ~200 MB (many small .rb/.erb/.yml, some
large incompressible assets) plus ignored log/, tmp/ and node_modules/ that hashing must skip.
Gems are real source gems built with `gem build` in the chain's ruby image (offline): tens of
pure gems and a dozen with C extensions whose generated C takes real compile time, so a cold
`bundle install` costs minutes on 2 cores like a real Rails app's would.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

# The image gems are built with: bench/apps.py sets it to the bench app's own ruby layer.
RUBY_IMAGE = os.environ.get("BENCH_RUBY_IMAGE", "127.0.0.1:5000/hello-ruby:latest")
SOURCE_DATE_EPOCH = "1704067200"  # fixed, so the .gem files are reproducible
WORDS = (
    "user",
    "account",
    "order",
    "invoice",
    "payment",
    "product",
    "cart",
    "session",
    "token",
    "report",
    "audit",
    "event",
    "notify",
    "render",
    "params",
    "where",
    "joins",
    "includes",
    "validate",
    "belongs",
    "has",
    "many",
    "scope",
    "def",
    "end",
    "if",
    "else",
    "return",
    "self",
    "attribute",
    "record",
    "query",
    "cache",
    "store",
    "config",
    "service",
    "job",
    "queue",
)

# --------------------------------------------------------------------------------------------
# Source tree


def _text(rng: random.Random, size: int, kind: str) -> str:
    """Plausible, compressible source text of about `size` bytes."""
    lines = []
    total = 0
    while total < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
        if kind == "erb":
            line = f'<div class="{rng.choice(WORDS)}"><%= {words.replace(" ", "_")} %></div>'
        else:
            line = f"    {rng.choice(WORDS)}_{rng.randint(0, 999)} = {words.replace(' ', '.')}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes | str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return len(data)


# (directory, extension, count, min KB, max KB, binary?) - kept by .dockerignore
KEPT = (
    ("app/models", "rb", 1800, 1, 6, False),
    ("app/controllers", "rb", 900, 1, 8, False),
    ("app/views", "html.erb", 2600, 1, 5, False),
    ("app/helpers", "rb", 500, 1, 3, False),
    ("app/javascript", "js", 300, 2, 30, False),
    ("lib", "rb", 900, 1, 6, False),
    ("config/locales", "yml", 300, 1, 10, False),
    ("db/migrate", "rb", 800, 1, 2, False),
    ("test", "rb", 1600, 1, 5, False),
    ("app/assets/images", "png", 220, 80, 1400, True),
    ("public/assets", "woff2", 80, 100, 600, True),
)
# Ignored by the app's .dockerignore (and imgbuild's defaults): must not be hashed or sent.
IGNORED = (
    ("log", "log", 4, 5000, 12000, False),
    ("tmp/cache", "bin", 800, 4, 20, True),
    ("node_modules/pkg", "js", 3000, 2, 14, False),
)
DOCKERIGNORE = """.git
log/
tmp/
node_modules/
coverage/
.bundle/
vendor/bundle/
*.md
"""


def generate_tree(app: Path, seed: int = 6) -> tuple[int, int]:
    """Write the source tree; return (kept files, kept bytes)."""
    rng = random.Random(seed)
    files = size = 0
    for spec, kept in [(s, True) for s in KEPT] + [(s, False) for s in IGNORED]:
        directory, ext, count, lo, hi, binary = spec
        for i in range(count):
            # Nest files a few levels deep, like a real app's namespaces.
            sub = f"ns{i % 23}/part{i % 7}" if count > 200 else ""
            path = app / directory / sub / f"{Path(directory).name}_{i:05d}.{ext}"
            n = rng.randint(lo, hi) * 1024
            kind = "erb" if ext.endswith("erb") else "rb"
            data = rng.randbytes(n) if binary else _text(rng, n, kind)
            written = _write(path, data)
            if kept:
                files += 1
                size += written
    _write(app / ".dockerignore", DOCKERIGNORE)
    _write(app / "app.rb", 'require "bundler/setup"\nputs "bench app"\nsleep\n')
    _write(app / "config.ru", 'run ->(_env) { [200, {}, ["ok"]] }\n')
    return files + 3, size


# --------------------------------------------------------------------------------------------
# Gems


def _c_source(name: str, functions: int) -> str:
    """A C extension whose many switch-heavy functions take gcc -O3 real time to compile.

    They are exported, not static: gcc drops unused static functions before optimizing them.
    """
    out = ["#include <ruby.h>", "#include <stdint.h>"]
    for i in range(functions):
        out.append(
            f"uint64_t {name}_f{i}(uint64_t x, const uint64_t *t, int n) {{\n"
            f"  uint64_t a = x ^ {i * 2654435761 % 2**32}u, b = {i}u;\n"
            "  for (int k = 0; k < n; k++) {\n"
            "    switch ((a + k) & 7) {\n"
            f"      case 0: a = a * 31 + t[k] + {i}; break;\n"
            "      case 1: b ^= (a << 7) | (a >> 57); break;\n"
            f"      case 2: a += b * {i + 3}u; break;\n"
            f"      case 3: b = (b + t[(k * {i + 1}) % n]) * 17; break;\n"
            f"      case 4: a ^= b >> {i % 13 + 1}; break;\n"
            f"      case 5: b -= a * 3 + {i}; break;\n"
            "      case 6: a = (a << 3) ^ (b >> 5) ^ t[k]; break;\n"
            "      default: b = b * 0x9E3779B97F4A7C15ull + a; break;\n"
            "    }\n  }\n  return a ^ b;\n}\n"
        )
    calls = " ^ ".join(f"{name}_f{i}(x, t, 8)" for i in range(min(functions, 64)))
    out.append(
        "static VALUE mix(VALUE self, VALUE v) {\n"
        "  uint64_t t[8] = {1, 2, 3, 4, 5, 6, 7, 8}; uint64_t x = NUM2ULL(v);\n"
        f"  return ULL2NUM({calls});\n}}\n"
        f"void Init_{name}(void) {{\n"
        f'  VALUE m = rb_define_module("{name.title().replace("_", "")}");\n'
        '  rb_define_module_function(m, "mix", mix, 1);\n}\n'
    )
    return "\n".join(out)


def _gemspec(name: str, files: list[str], deps: list[str], native: bool) -> str:
    lines = [
        "Gem::Specification.new do |s|",
        f'  s.name = "{name}"',
        '  s.version = "1.0.0"',
        '  s.summary = "synthetic benchmark gem"',
        '  s.authors = ["imgbuild bench"]',
        '  s.license = "MIT"',
        '  s.homepage = "https://example.invalid/bench"',
        '  s.required_ruby_version = ">= 3.0"',
        f"  s.files = {files!r}".replace("'", '"'),
        '  s.require_paths = ["lib"]',
    ]
    if native:
        lines.append(f'  s.extensions = ["ext/{name}/extconf.rb"]')
    lines += [f'  s.add_dependency "{dep}", "~> 1.0"' for dep in deps]
    return "\n".join([*lines, "end", ""])


def write_gem(src: Path, name: str, rng: random.Random, deps: list[str], functions: int) -> None:
    """One gem's source dir: lib/ (+ ext/ when `functions` > 0) and an explicit gemspec."""
    root = src / name
    files = [f"lib/{name}.rb"]
    body = f'module {name.title().replace("_", "")}\n  VERSION = "1.0.0"\nend\n'
    if functions:
        body = f'require "{name}/{name}"\n' + body
        files += [f"ext/{name}/extconf.rb", f"ext/{name}/{name}.c"]
        _write(root / files[1], f'require "mkmf"\ncreate_makefile("{name}/{name}")\n')
        _write(root / files[2], _c_source(name, functions))
    _write(root / files[0], body)
    for i in range(rng.randint(3, 12)):  # some Ruby payload, like real gems carry
        rel = f"lib/{name}/part_{i}.rb"
        _write(root / rel, _text(rng, rng.randint(2, 20) * 1024, "rb"))
        files.append(rel)
    _write(root / f"{name}.gemspec", _gemspec(name, files, deps, bool(functions)))


def _docker_ruby(workdir: Path, script: str) -> None:
    """Run a shell script in the ruby image, offline, with /w = workdir."""
    subprocess.run(
        ["docker", "run", "--rm", "--network=none", "--user", f"{os.getuid()}:{os.getgid()}",
         "-e", "HOME=/tmp", "-e", f"SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
         "-e", "BUNDLE_APP_CONFIG=/tmp/bundle-config",
         "-v", f"{workdir}:/w", "-w", "/w", RUBY_IMAGE, "sh", "-euc", script],
        check=True,
    )  # fmt: skip


BUILD_GEMS = (
    'ruby -rrubygems/package -e \'Dir["SRC/*/*.gemspec"].sort.each { |f| '
    "Dir.chdir(File.dirname(f)) { s = Gem::Specification.load(File.basename(f)); "
    'File.rename(Gem::Package.build(s), "/w/CACHE/#{s.file_name}") } }\''
)


def build_gems(workdir: Path, src_rel: str, cache_rel: str) -> None:
    (workdir / cache_rel).mkdir(parents=True, exist_ok=True)
    script = BUILD_GEMS.replace("SRC", src_rel).replace("CACHE", cache_rel)
    _docker_ruby(workdir, script + " >/dev/null")


def generate_gems(dest: Path, pures: int = 30, natives: int = 12, functions: int = 1000) -> None:
    """Gem sources in dest/gems-src, .gem files in dest/app/vendor/cache, Gemfile + lock."""
    rng = random.Random(7)
    src = dest / "gems-src"
    pure_names = [f"benchpure_{i:02d}" for i in range(pures)]
    for i, name in enumerate(pure_names):
        deps = [pure_names[i - 1]] if i % 4 == 3 else []  # a few dependency chains
        write_gem(src, name, rng, deps, 0)
    native_names = [f"benchnative_{i:02d}" for i in range(natives)]
    for i, name in enumerate(native_names):
        write_gem(src, name, rng, [pure_names[i % pures]], functions)
    build_gems(dest, "gems-src", "app/vendor/cache")
    dev = pure_names[-2:]  # a development/test group that BUNDLE_WITHOUT skips
    lines = ["# frozen_string_literal: true", ""]
    lines += [f'gem "{n}", "~> 1.0"' for n in [*pure_names[:-2], *native_names]]
    lines += ["", "group :development, :test do"]
    lines += [f'  gem "{n}", "~> 1.0"' for n in dev] + ["end", ""]
    _write(dest / "app" / "Gemfile", "\n".join(lines))
    _docker_ruby(dest / "app", "rm -f Gemfile.lock && bundle lock >/dev/null")


def generate_extras(app: Path, count: int = 6, functions: int = 40) -> list[str]:
    """Small native gems for P4 ("one gem added"), in vendor/cache but not in the Gemfile."""
    rng = random.Random(8)
    scratch = app.parent / f"{app.name}-extras-src"
    names = [f"benchextra_{i:02d}" for i in range(count)]
    for name in names:
        write_gem(scratch, name, rng, [], functions)
    workdir = app.parent
    build_gems(workdir, f"{scratch.name}", f"{app.name}/vendor/cache")
    return names


def write_config(app: Path, name: str) -> None:
    _write(
        app / "imgbuild.yaml",
        f"""# generated by bench/gen_app.py
name: {name}
registry: ${{IMGBUILD_DEV_REGISTRY:-127.0.0.1:5000}}
base_image: ${{IMGBUILD_DEV_BASE_IMAGE:-debian:bookworm-slim}}
ruby:
  version: "3.3.8"
  source:
    path: ${{IMGBUILD_DEV_HOME:-~/.cache/imgbuild-dev}}/ruby/ruby-3.3.8.tar.gz
  ruby_build: ${{IMGBUILD_DEV_HOME:-~/.cache/imgbuild-dev}}/ruby-build
base:
  packages: [curl]
  bundle_without: [development, test]
app:
  command: ruby app.rb
  port: 8080
""",
    )


def generate_large(dest: Path, name: str = "bench-large") -> None:
    app = dest / "app"
    files, size = generate_tree(app)
    print(f"tree: {files} kept files, {size / 1e6:.0f} MB (+ ignored log/ tmp/ node_modules/)")
    generate_gems(dest)
    generate_extras(app)
    write_config(app, name)
    (dest / ".complete").write_text("ok\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["large", "extras"])
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.what == "large":
        generate_large(args.dest)
    else:
        print(" ".join(generate_extras(args.dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
