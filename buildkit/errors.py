"""Every user-facing failure, each with its own exit code.

Each subclass of ImgbuildError has a distinct exit code; defining them all here keeps them unique
and documented (docs/errors.md lists them). A message is one line: what happened, to what (file,
field or image), and what to do. Only `cli.main` catches these.
"""

from __future__ import annotations


class ImgbuildError(Exception):
    """Base of the errors imgbuild expects; `exit_code` is what the process exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ImgbuildError):
    """imgbuild.yaml (or IMGBUILD_* / flags) is malformed, unknown or mistyped."""

    exit_code = 3


class InvalidReferenceError(ConfigError, ValueError):
    """An image reference or registry Docker would reject or read otherwise (engine.reference).

    A ConfigError (exit 3): references come from imgbuild.yaml, IMGBUILD_* and flags. `reason` is
    the grammar's own words (distribution/reference's), for a caller that names the key.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"'{text}': {reason}")
        self.text = text
        self.reason = reason


class InputError(ImgbuildError):
    """A file the chain needs is missing or wrong: Dockerfile, Gemfile.lock, tarball, checksum."""

    exit_code = 4


class DaemonUnavailableError(ImgbuildError):
    """No Docker daemon answers."""

    exit_code = 5


class BuildKitUnavailableError(ImgbuildError):
    """The docker CLI has no BuildKit (no buildx, too old), or the engine is too old."""

    exit_code = 6


class BuildFailedError(ImgbuildError):
    """BuildKit ran and the build failed. Builds are never retried."""

    exit_code = 7


class RegistryError(ImgbuildError):
    """The registry is unreachable, refuses our credentials, or answers nonsense."""

    exit_code = 8


class PushFailedError(ImgbuildError):
    """Pushing an image failed after the retries an idempotent push is allowed."""

    exit_code = 9


class SizeRegressionError(ImgbuildError):
    """An image grew past its budget or baseline."""

    exit_code = 10


class AwsError(ImgbuildError):
    """An AWS API (ECR, STS, CodeBuild, IAM) failed or is unreachable."""

    exit_code = 11


class CommandNotFoundError(ImgbuildError):
    """A program imgbuild runs (docker, git) is not on PATH."""

    exit_code = 12


class ServerError(ImgbuildError):
    """`imgbuild server` could not start, or was given a bad option."""

    exit_code = 13


class TestsFailedError(ImgbuildError):
    """`imgbuild verify`: the app's tests ran and failed (the message names the failed tests)."""

    exit_code = 14


class SmokeCheckError(ImgbuildError):
    """`imgbuild verify`: the app image started but did not answer as declared, or exited."""

    exit_code = 15


class ServiceImageError(ImgbuildError):
    """`imgbuild verify`: a service image is neither in the daemon nor pullable."""

    exit_code = 16


class NotReadyError(ImgbuildError):
    """`imgbuild verify`: a service or the app did not become ready within its timeout."""

    exit_code = 17


class TestCommandError(ImgbuildError):
    """`imgbuild verify`: the test command does not exist or cannot run in the test image."""

    exit_code = 18


class Interrupted(ImgbuildError):
    """SIGINT/SIGTERM: exit 128 + signal number, after atomic writes finished or were dropped."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.exit_code = 128 + signum


#: Exit code of a bug in imgbuild itself (EX_SOFTWARE); the message asks for a bug report.
INTERNAL_ERROR_EXIT = 70
