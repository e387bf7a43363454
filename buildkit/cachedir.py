"""The cache directory's layout: every path under it is built here and nowhere else.

The cache dir is `Config.cache_dir` ($IMGBUILD_CACHE_DIR, else $XDG_CACHE_HOME/imgbuild, else
~/.cache/imgbuild). Everything in it is a cache: deleting it costs speed and vaguer "why
rebuild?" reasons, never a wrong decision. The layout is a compatibility promise (a user's cache
must keep working across versions), pinned path by path in tests/test_cachedir.py. `<repo>` is a
repository made safe for a file name (`fsutil.safe_name`: 127.0.0.1:5000/hello-app becomes
127.0.0.1_5000_hello-app).

    <cache dir>/
    ├── engine.json                      engine.builder.detect: the probed docker CLI, under a
    │                                    fingerprint of its binary, plugins and environment
    ├── state/<repo>.json                chain.state: the key and inputs of the last image of
    │                                    each layer; written by chain.plan, read by chain.plan
    │                                    (reasons), run.pipeline (cache-from), run.underlays
    ├── snapshots/<repo>.json            applayer.snapshot: the app's last source snapshot
    │                                    (image and files); written and read by run.underlays
    ├── digests/                         source.digestcache.DigestCache files (stat -> digest)
    │   ├── <sha of context>.json        the app context's: opened by chain.plan.digest_cache
    │   │                                for chain.plan, reports.collect and bench, which hash
    │   │                                the app through chain.layers
    │   └── ruby-build-<sha>.json        a local ruby-build checkout's, chain.layers
    ├── history/
    │   ├── <config name>.jsonl          reports.history: one line per run; appended by
    │   │                                reports.collect, read by it and `imgbuild report`
    │   └── <config name>.jsonl.lock     its flock (beside any history file, not only here)
    ├── verify/<config name>/            cli.verify (default --out): imgbuild verify's JUnit
    │                                    files (tests/, imgbuild-verify.xml) and app.log
    ├── reports/                         reports.layerfiles.LayerStore, reports.measure
    │   ├── layer-sizes.json             uncompressed size by layer diff_id
    │   ├── files/<diff_id hex>.json     a layer's files, from its tarball
    │   └── manifests/<sha>.json         an image's manifest facts by digest and platform
    ├── native/                          run.native: the app layer tarball the registry-native
    │                                    path writes, uploads and deletes (.<pid>.tar.gz)
    ├── contexts/                        run.staging: build contexts, kept for incremental
    │   │                                transfer
    │   ├── <repo>.lock                  flock: runs staging one image take turns
    │   └── <repo>/                      the ruby layer: ruby-build/, src/, defs/ and
    │       │                            .ruby-build-source (what ruby-build/ came from)
    │       └── delta/                   the app layer: only the files changed since the
    │                                    snapshot (run.underlays)
    ├── dockerfiles/<repo>/              run.staging: staged Dockerfiles, each beside its
    │   │                                Dockerfile.dockerignore; read by BuildKit
    │   ├── Dockerfile                   the layer's own
    │   └── assets/ bulk/ snapshot/      the app's hidden images (applayer), and its build on
    │       delta/                       a snapshot
    └── downloads/<url>                  run.staging: ruby-build release tarballs (written
                                         as .<name>.<pid>.part first)

Not here: the server's sockets ($XDG_RUNTIME_DIR/imgbuild or ~/.cache/imgbuild/server, see
server.protocol), whatever IMGBUILD_CACHE_DIR says.

Functions only name paths; their callers create directories and write files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from buildkit.fsutil import safe_name


def _record(cache_dir: Path, kind: str, name: str) -> Path:
    """`<kind>/<name made safe>.json`: one small record per repository."""
    return cache_dir / kind / f"{safe_name(name)}.json"


def _short_sha(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---- records ---------------------------------------------------------------------------------


def engine_facts(cache_dir: Path) -> Path:
    return cache_dir / "engine.json"


def state_record(cache_dir: Path, repository: str) -> Path:
    return _record(cache_dir, "state", repository)


def snapshot_record(cache_dir: Path, repository: str) -> Path:
    return _record(cache_dir, "snapshots", repository)


def history_file(cache_dir: Path, config_name: str) -> Path:
    return cache_dir / "history" / f"{safe_name(config_name)}.jsonl"


def verify_dir(cache_dir: Path, config_name: str) -> Path:
    """`imgbuild verify`'s JUnit files and logs, outside a buildspec's report dir."""
    return cache_dir / "verify" / safe_name(config_name)


# ---- digest caches ---------------------------------------------------------------------------


def context_digests(cache_dir: Path, context: Path) -> Path:
    """The digest cache of a build context, keyed by the context's path."""
    return cache_dir / "digests" / f"{_short_sha(str(context), 16)}.json"


def ruby_build_digests(cache_dir: Path, checkout: Path) -> Path:
    """The digest cache of a local ruby-build checkout, keyed by its path."""
    return cache_dir / "digests" / f"ruby-build-{_short_sha(str(checkout), 16)}.json"


# ---- report caches ---------------------------------------------------------------------------


def layer_sizes(cache_dir: Path) -> Path:
    return cache_dir / "reports" / "layer-sizes.json"


def layer_files(cache_dir: Path, diff_hex: str) -> Path:
    """A layer's file list, by the 64 hex digits of its diff_id."""
    return cache_dir / "reports" / "files" / f"{diff_hex}.json"


def manifest_facts(cache_dir: Path, digest: str, platform: str) -> Path:
    """What an image manifest (by digest, resolved for `platform`) says: config and layers."""
    return cache_dir / "reports" / "manifests" / f"{_short_sha(f'{digest} {platform}', 32)}.json"


# ---- staging ---------------------------------------------------------------------------------


def native_scratch(cache_dir: Path) -> Path:
    """Where the registry-native app path writes its layer tarball before the upload."""
    return cache_dir / "native"


def context_dir(cache_dir: Path, repository: str) -> Path:
    """The image's staged build context (the ruby layer's; the app's holds `delta/`)."""
    return cache_dir / "contexts" / safe_name(repository)


def staging_lock(cache_dir: Path, repository: str) -> Path:
    """The flock file runs staging this image's Dockerfiles and context take turns on."""
    return cache_dir / "contexts" / f"{safe_name(repository)}.lock"


def delta_context(cache_dir: Path, repository: str) -> Path:
    return context_dir(cache_dir, repository) / "delta"


def dockerfile_dir(cache_dir: Path, repository: str, variant: str = "") -> Path:
    """Where a staged Dockerfile of the image lives: its own (variant ""), or the app's
    `assets`, `bulk`, `snapshot` or `delta` one."""
    return cache_dir / "dockerfiles" / safe_name(repository) / variant


def downloads(cache_dir: Path) -> Path:
    return cache_dir / "downloads"


def download(cache_dir: Path, url: str) -> Path:
    """Where the file downloaded from `url` is kept."""
    return downloads(cache_dir) / safe_name(url)
