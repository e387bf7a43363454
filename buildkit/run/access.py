"""How one run reaches its registry: the host image references use, credentials, ECR identity.

`open_registry` splits the registry into its host and path prefix (`127.0.0.1:5000/team`: images
are 127.0.0.1:5000/team/<name>-app, the client talks to 127.0.0.1:5000), resolves `registry: ecr`
/ an ECR host once per run (STS, token provider) and returns the config with the data-plane host
filled in; everything that talks to the registry (plan's existence checks, pushes, BuildKit's
--cache-from) gets its credentials from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buildkit.chain.layers import repository_path
from buildkit.config.loading import LAYERS, Config
from buildkit.engine import credentials, dockercfg, reference
from buildkit.engine.registry import RegistryClient

if TYPE_CHECKING:
    from buildkit.engine import ecr

AUTH_ERRORS = ("unauthorized", "authentication required", "no basic auth credentials", "denied")


@dataclass
class RegistryAccess:
    host: str | None  # HOST[:PORT] alone: what URLs, credentials and tokens are for
    ecr_registry: ecr.EcrRegistry | None = None
    tokens: ecr.TokenProvider | None = None

    def auth(self, *, force: bool = False) -> credentials.Auth | None:
        if self.tokens is not None:
            return self.tokens(force=force)
        return credentials.for_registry(self.host) if self.host else None

    def client(self) -> RegistryClient:
        assert self.host is not None
        tokens = self.tokens

        def refresh() -> credentials.Auth:
            assert tokens is not None
            return tokens(force=True)

        return RegistryClient(
            self.host, auth=self.auth(), refresh=refresh if tokens is not None else None
        )

    def sdk_auth(self, *, force: bool = False) -> dict[str, str] | None:
        """auth_config for SDK push/pull; None lets the SDK use the docker config itself."""
        if self.tokens is None:
            return None
        auth: credentials.Auth = self.tokens(force=force)
        return auth.sdk_config()

    @contextmanager
    def build_env(self) -> Iterator[Mapping[str, str]]:
        """Env for the BuildKit subprocess: a private DOCKER_CONFIG when we hold a token."""
        if self.tokens is None or self.host is None:
            yield {}
            return
        with dockercfg.private_config({self.host: self.tokens()}) as directory:
            yield {"DOCKER_CONFIG": str(directory)}


def open_registry(config: Config) -> tuple[Config, RegistryAccess]:
    if not config.registry:
        return config, RegistryAccess(host=None)
    host, prefix = (
        ("ecr", "") if config.registry == "ecr" else reference.split_registry(config.registry)
    )
    if host != "ecr" and reference.parse_ecr_host(host) is None:
        return config, RegistryAccess(host=host)  # not ECR (what ecr.resolve would answer)
    # ECR's client (boto3 wrappers) only when the registry is ECR's: a one-shot run against
    # another registry does not import it (issue 17, P2-ONESHOT).
    from buildkit.engine import ecr

    registry = ecr.resolve(host)
    if registry is None:
        return config, RegistryAccess(host=host)
    data_plane = reference.join_registry(registry.data_plane, prefix)
    resolved = dataclasses.replace(config, registry=data_plane)
    return resolved, RegistryAccess(
        host=registry.data_plane, ecr_registry=registry, tokens=ecr.TokenProvider(registry)
    )


def ensure_ecr_repositories(config: Config, access: RegistryAccess) -> list[str]:
    """Create/update the chain's ECR repositories (a no-op for other registries)."""
    if access.ecr_registry is None:
        return []
    from buildkit.engine import ecr_repos  # ECR only (see open_registry)

    wanted = [
        ecr_repos.desired(repository_path(config, layer), config.ecr, config.tags.release_branches)
        for layer in LAYERS
    ]
    return ecr_repos.ensure(access.ecr_registry, wanted)
