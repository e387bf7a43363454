"""Build secrets: credentials for private gem sources, handed to `bundle install` through a
BuildKit secret mount. Values go into a 0600 file in a private temp dir that only BuildKit reads
(`--secret id=bundle-env,src=FILE` puts the path, never the value, on argv); they are registered
for redaction and are not part of any layer key, so rotating a token rebuilds nothing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from buildkit import proc
from buildkit.errors import InputError

BUNDLE_SECRET_ID = "bundle-env"


@contextmanager
def bundle_env_file(
    names: Sequence[str], env: Mapping[str, str] | None = None, *, where: str = "base.secrets"
) -> Iterator[dict[str, Path]]:
    """{secret id: file} for the base build; empty when no secrets are configured."""
    if not names:
        yield {}
        return
    env = os.environ if env is None else env
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise InputError(
            f"{where} names {', '.join(missing)}, not set in the environment; export "
            "it (CodeBuild: a Secrets Manager or Parameter Store variable)"
        )
    directory = Path(tempfile.mkdtemp(prefix="imgbuild-secrets-"))
    try:
        directory.chmod(0o700)
        path = directory / BUNDLE_SECRET_ID
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for name in names:
                proc.register_secret(env[name])
                handle.write(f"export {name}={shlex.quote(env[name])}\n")
        yield {BUNDLE_SECRET_ID: path}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
