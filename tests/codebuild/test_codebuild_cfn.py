"""`imgbuild codebuild render --format cloudformation`: passes cfn-lint and says what apply does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.codebuild import project
from buildkit.config import loading as configmod
from tests.codebuild.test_codebuild_buildspec import write_verify_config
from tests.config.test_codebuild_config import write_config

SERVICE_ROLE_SECTION = """\
codebuild:
  github: https://github.com/acme/shop
  service_role: arn:aws:iam::123456789012:role/ci
  compute_type: BUILD_GENERAL1_LARGE
"""


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "cfn-lint"
    program = str(exe) if exe.is_file() else shutil.which("cfn-lint")
    if program is None:
        pytest.fail("cfn-lint is not installed; pip install cfn-lint (a dev dependency)")
    return subprocess.run(
        [program, "--", str(template)], capture_output=True, text=True, timeout=300, check=False
    )


def render(config: Path, out: Path) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "buildkit",
            "-c",
            str(config),
            "codebuild",
            "render",
            "--format",
            "cloudformation",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out / "codebuild.cfn.yaml"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.mark.parametrize("section", ["full", "service_role"])
def test_the_template_passes_cfn_lint(tmp_path: Path, section: str) -> None:
    from tests.config.test_codebuild_config import FULL_SECTION

    text = FULL_SECTION if section == "full" else SERVICE_ROLE_SECTION
    template = render(write_config(tmp_path / "shop", text), tmp_path / "out")
    result = cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_fails_a_broken_template(tmp_path: Path) -> None:
    template = render(write_config(tmp_path / "shop"), tmp_path / "out")
    document = load(template)
    pr = document["Resources"]["PrProject"]["Properties"]
    pr["Environment"]["PrivilegedMode"] = "maybe"
    pr["Environment"]["Privileged"] = True
    del document["Resources"]["MainProject"]["Properties"]["Artifacts"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = cfn_lint(broken)
    assert result.returncode != 0
    for rule in ("E3002", "E3003", "E3012"):  # unknown property, missing property, wrong type
        assert rule in result.stdout, result.stdout


def test_the_template_holds_what_apply_creates(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "shop")
    resources = load(render(config_path, tmp_path / "out"))["Resources"]
    assert set(resources) == {
        "ServiceRole",
        "PrProject",
        "MainProject",
        "BatchProject",
        "PrReportGroup",
        "MainReportGroup",
        "BatchReportGroup",
    }
    config = configmod.resolve(config_path, env={})
    specs = {s.kind: s for s in project.projects(config, project.Account("123456789012", "x"))}
    pr = resources["PrProject"]["Properties"]
    assert pr["Name"] == "shop-pr"
    assert pr["ServiceRole"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    assert pr["Source"]["BuildSpec"] == "buildspecs/pr.yml"
    assert pr["Environment"]["ComputeType"] == "BUILD_GENERAL1_SMALL"
    assert pr["Environment"]["PrivilegedMode"] is True
    assert pr["Cache"] == {
        "Type": "LOCAL",
        "Modes": ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"],
    }
    webhook = specs["pr"].webhook
    assert webhook is not None
    assert pr["Triggers"] == {
        "Webhook": True,
        "FilterGroups": [
            [{"Type": f["type"], "Pattern": f["pattern"]} for f in group]
            for group in webhook["filterGroups"]
        ],
        "BuildType": "BUILD",
    }
    batch = resources["BatchProject"]["Properties"]
    assert "Triggers" not in batch
    assert batch["BuildBatchConfig"]["Restrictions"]["MaximumBuildsAllowed"] == 3
    assert batch["BuildBatchConfig"]["ServiceRole"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    group = resources["MainReportGroup"]["Properties"]
    assert (group["Name"], group["Type"]) == ("shop-main-size", "TEST")
    statements = resources["ServiceRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    ecr = next(s for s in statements if s["Sid"] == "EcrPushPull")
    assert ecr["Resource"][0] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecr:ap-northeast-1:123456789012:repository/team/shop-ruby"
    }


def test_with_verify_every_project_gets_a_tests_report_group(tmp_path: Path) -> None:
    template = render(write_verify_config(tmp_path / "shop"), tmp_path / "out")
    resources = load(template)["Resources"]
    for kind in ("pr", "main", "batch"):
        size = resources[f"{kind.capitalize()}ReportGroup"]["Properties"]
        tests = resources[f"{kind.capitalize()}TestsReportGroup"]["Properties"]
        assert size["Name"] == f"shop-{kind}-size"
        assert (tests["Name"], tests["Type"]) == (f"shop-{kind}-tests", "TEST")
        assert tests["ExportConfig"] == {"ExportConfigType": "NO_EXPORT"}
    statements = resources["ServiceRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    reports = next(s for s in statements if s["Sid"] == "Reports")["Resource"]
    arn = "arn:${AWS::Partition}:codebuild:${AWS::Region}:${AWS::AccountId}:report-group/"
    assert {"Fn::Sub": f"{arn}shop-main-tests"} in reports
    assert len(reports) == 6
    result = cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr
