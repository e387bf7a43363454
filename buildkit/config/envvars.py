"""The IMGBUILD_* variables imgbuild reads, and why an empty one is an error, not "not given".

A CI script that runs `export IMGBUILD_REGISTRY="$REGISTRY"` (or `imgbuild --registry "$REGISTRY"`)
with $REGISTRY unset hands imgbuild an empty value. Read as "not given", it would fall back to
imgbuild.yaml's registry and push where the user did not mean to; so an empty (or blank) value of
a variable or flag that takes one stops imgbuild with one line (exit 3). Switches are the
exception: they only compare with `off` (or, for IMGBUILD_DEBUG, a true value), and an empty one
is taken literally, as a shell test takes it (docs/config.md#precedence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from buildkit.errors import ConfigError

#: Variables that take a value, and who reads them. Every command checks them all when it starts
#: (cli.app), so a variable read deep in a run never meets an empty value.
VALUES = (
    "IMGBUILD_REGISTRY",  # config.loading.ENV_OVERRIDES: the top-level keys
    "IMGBUILD_NAME",
    "IMGBUILD_BASE_IMAGE",  # also scaffold.detect (imgbuild init)
    "IMGBUILD_PLATFORM",
    "IMGBUILD_CACHE_DIR",  # config.loading
    "IMGBUILD_DOCKER",  # engine.builder: the docker CLI
    "IMGBUILD_ECR_ENDPOINT",  # engine.ecr: where ECR's data plane answers (tests, proxies)
    "IMGBUILD_REPORT_DIR",  # codebuild.runtime, cli.verify
    "IMGBUILD_SERVER_DIR",  # server.protocol: the sockets' directory
    "IMGBUILD_SERVER_IDLE",  # server.daemon: seconds before an idle server exits
    "IMGBUILD_JOBS",  # cli.fleet: layers built at once over several apps
)
#: On/off switches: an empty value is a value (not `off`; for IMGBUILD_DEBUG, not true).
SWITCHES = ("IMGBUILD_DEBUG", "IMGBUILD_NATIVE", "IMGBUILD_GEM_SEED", "IMGBUILD_SERVER")


def value(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, None when it is unset; an empty or blank one is a ConfigError."""
    found = env.get(name)
    if found is not None and not found.strip():
        raise ConfigError(f"{name} is empty: unset it or give a value")
    return found


def check(env: Mapping[str, str], names: Iterable[str] = VALUES) -> None:
    """Refuse an empty value of any of these variables (the first one found, in `names` order)."""
    for name in names:
        value(env, name)


def flag_value(flag: str, given: str | None, *, required: bool = False) -> str | None:
    """A flag's (or argument's) value, None when it was not given; an empty or blank one is a
    ConfigError (the `imgbuild --registry "$UNSET"` of a CI script)."""
    if given is not None and not given.strip():
        todo = "give a value" if required else "leave it out or give a value"
        raise ConfigError(f"{flag} is empty: {todo}")
    return given
