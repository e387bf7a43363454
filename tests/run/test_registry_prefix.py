"""Issue 19: a registry with a path prefix (HOST[:PORT]/PATH), as teams share one: the chain
builds, pushes and promotes through the local registry under `/team`, and through an ECR
namespace (moto's ECR API, a real registry as its data plane), with repositories `team/<name>-*`.

Each test names its chain afresh: the shared dev registry keeps what earlier runs pushed, and a
chain already there would make "the first run pushes" pass without pushing anything.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest

from tests.aws_fixtures import aws_env, moto_calls, moto_server  # noqa: F401
from tests.conftest import Project, layers_by_name
from tests.registry_fixtures import (  # noqa: F401
    proxied_registry_fixture,
    registry_digest,
    scratch_registry_fixture,
)
from tests.run.test_ecr import ECR_HOST, WRITE_CALLS, ecr_client, ecr_project, tokens  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAYERS = ("ruby", "base", "app")


def catalog(address: str) -> set[str]:
    """Every repository the registry has, following its pages (Link: rel="next")."""
    repositories: set[str] = set()
    url = f"http://{address}/v2/_catalog?n=1000"
    while url:
        with urllib.request.urlopen(url, timeout=10) as response:
            repositories.update(json.loads(response.read())["repositories"] or ())
            link = response.headers.get("Link", "")
        url = f"http://{address}{link.split(';')[0].strip('<> ')}" if link else ""
    return repositories


def rename(project: Project) -> str:
    name = f"prefix{uuid.uuid4().hex[:10]}"
    project.edit_config(f"name: {project.name}\n", f"name: {name}\n")
    project.name = name
    return name


def run_json(project: Project, *args: str) -> dict[str, dict[str, Any]]:
    return layers_by_name(project.run_json(*args))


def test_chain_builds_pushes_and_promotes_under_a_path_prefix(project: Project) -> None:
    name, host = rename(project), project.dev.registry
    team, prod = f"{host}/team", f"{host}/prod"

    planned = run_json(project, "--registry", team, "plan")
    assert {n: p["image"].rpartition(":")[0] for n, p in planned.items()} == {
        layer: f"{team}/{name}-{layer}" for layer in LAYERS
    }
    assert [p["status"] for p in planned.values()] == ["build"] * 3

    first = run_json(project, "--registry", team, "app", "--push")
    assert [layer["pushed"] for layer in first.values()] == [True, True, True]
    repositories = catalog(host)
    assert {f"team/{name}-{layer}" for layer in LAYERS} <= repositories
    assert not {f"{name}-{layer}" for layer in LAYERS} & repositories  # nothing beside /team
    for layer, outcome in first.items():
        assert outcome["image"] == f"{team}/{name}-{layer}:{outcome['key'][:12]}"
        stored = registry_digest(host, f"team/{name}-{layer}", outcome["key"][:12])
        assert stored == outcome["digest"]

    second = run_json(project, "--registry", team, "app", "--push")
    assert [layer["built"] for layer in second.values()] == [False, False, False]
    assert [layer["pushed"] for layer in second.values()] == [False, False, False]
    report = project.run_json("--registry", team, "report")
    assert {i["layer"]: i["image"] for i in report["images"]} == {
        layer: outcome["image"] for layer, outcome in first.items()
    }
    assert {i["source"] for i in report["images"]} == {"registry"}

    result = project.run("promote", "app", "--from", team, "--to", prod, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    promoted = {p["layer"]: p for p in json.loads(result.stdout)["layers"]}
    for layer, outcome in first.items():
        tag = outcome["key"][:12]
        assert promoted[layer]["target"] == f"{prod}/{name}-{layer}:{tag}"
        assert registry_digest(host, f"prod/{name}-{layer}", tag) == outcome["digest"]
    assert {f"prod/{name}-{layer}" for layer in LAYERS} <= catalog(host)


def test_ecr_namespace_gets_its_repositories_and_pushes(
    ecr_project: Project,  # noqa: F811 - the fixture imported above
    scratch_registry: Any,  # the data plane behind the proxy
    moto_calls: list[tuple[str, str]],  # noqa: F811
) -> None:
    ecr_project.edit_config("registry: ecr", f"registry: {ECR_HOST}/team")
    name = ecr_project.name

    first = run_json(ecr_project, "app", "--push")
    described = ecr_client().describe_repositories()["repositories"]
    repositories = {r["repositoryName"]: r for r in described}
    assert set(repositories) == {f"team/{name}-{layer}" for layer in LAYERS}
    app = repositories[f"team/{name}-app"]
    assert app["repositoryUri"] == f"{ECR_HOST}/team/{name}-app"
    assert app["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    lifecycle = ecr_client().get_lifecycle_policy(repositoryName=f"team/{name}-app")
    assert json.loads(lifecycle["lifecyclePolicyText"])["rules"]
    for layer, outcome in first.items():
        tag = outcome["key"][:12]
        assert outcome["image"].endswith(f"/team/{name}-{layer}:{tag}"), outcome["image"]
        stored = registry_digest(scratch_registry.address, f"team/{name}-{layer}", tag)
        assert stored == outcome["digest"]

    moto_calls.clear()
    second = run_json(ecr_project, "app", "--push")
    assert [layer["built"] for layer in second.values()] == [False, False, False]
    assert [layer["pushed"] for layer in second.values()] == [False, False, False]
    assert [action for _, action in moto_calls if action in WRITE_CALLS] == []
