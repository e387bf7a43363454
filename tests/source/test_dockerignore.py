"""Docker .dockerignore semantics (moby/patternmatcher as BuildKit's fsutil walker uses it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.source.dockerignore import (
    DEFAULT_PATTERNS,
    IgnoreRules,
    read_dockerignore,
    render,
    rules_for_context,
)


def ignored(patterns: list[str], path: str) -> bool:
    return IgnoreRules(patterns).is_ignored(path)


def test_defaults_are_the_documented_list() -> None:
    assert DEFAULT_PATTERNS == (
        ".git",
        ".env*",
        "config/master.key",
        "config/credentials/*.key",
        "**/*.pem",
        "log",
        "tmp",
        "imgbuild-baseline.json",
    )
    assert "node_modules" not in DEFAULT_PATTERNS


@pytest.mark.parametrize(
    "path",
    [
        ".git",
        ".git/HEAD",
        ".git/objects/ab/cdef",
        ".env",
        ".env.production",
        "config/master.key",
        "config/credentials/production.key",
        "certs/x.pem",
        "server.pem",
        "deep/er/ca.pem",
        "log/development.log",
        "tmp/cache/bootsnap/x",
    ],
)
def test_default_patterns_exclude_secrets_and_scratch(path: str) -> None:
    assert IgnoreRules(DEFAULT_PATTERNS).is_ignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "app/models/user.rb",
        "Gemfile",
        "Gemfile.lock",
        "config/credentials/production.yml.enc",
        "config/database.yml",
        "node_modules/x/index.js",
        "app/tmp/x.rb",  # `tmp` is anchored at the context root
        "app/.env",  # so is `.env*`
        "vendor/cache/rails-7.1.gem",
    ],
)
def test_default_patterns_keep_app_files(path: str) -> None:
    assert not IgnoreRules(DEFAULT_PATTERNS).is_ignored(path)


def test_negation_re_includes() -> None:
    patterns = ["*.md", "!README.md"]
    assert ignored(patterns, "CHANGELOG.md")
    assert not ignored(patterns, "README.md")


def test_last_matching_pattern_wins() -> None:
    assert ignored(["!README.md", "*.md"], "README.md")
    assert not ignored(["*.md", "!README.md"], "README.md")
    assert ignored(["*.md", "!README.md", "README*"], "README.md")


def test_double_star_matches_any_number_of_directories() -> None:
    assert ignored(["**/*.log"], "a.log")
    assert ignored(["**/*.log"], "a/b/c.log")
    assert ignored(["a/**/b"], "a/b")
    assert ignored(["a/**/b"], "a/x/y/b")
    assert not ignored(["a/**/b"], "a/x/y/c")
    assert ignored(["docs/**"], "docs/x/y.md")
    assert not ignored(["docs/**"], "docs")  # `docs/**` is the contents, not the directory
    assert ignored(["**"], "anything/at/all")


def test_single_wildcards_do_not_cross_slashes() -> None:
    assert ignored(["*.rb"], "x.rb")
    assert not ignored(["*.rb"], "app/x.rb")
    assert ignored(["app/?.rb"], "app/x.rb")
    assert not ignored(["app/?.rb"], "app/xy.rb")
    assert not ignored(["a?b"], "a/b")
    assert ignored(["[ab].txt"], "a.txt")
    assert not ignored(["[ab].txt"], "c.txt")
    assert ignored(["[^ab].txt"], "c.txt")
    assert ignored(["app/*/x.rb"], "app/models/x.rb")
    assert not ignored(["app/*/x.rb"], "app/a/b/x.rb")


def test_regexp_metacharacters_are_literal() -> None:
    assert ignored(["a+b(1).rb"], "a+b(1).rb")
    assert ignored(["*.rb"], "a.rb")
    assert not ignored(["*.rb"], "a_rb")
    assert ignored(["\\*.rb"], "*.rb")
    assert not ignored(["\\*.rb"], "x.rb")


@pytest.mark.parametrize("pattern", ["log", "log/", "/log", "./log", "log/.", "log//"])
def test_directory_pattern_excludes_everything_below(pattern: str) -> None:
    rules = IgnoreRules([pattern])
    assert rules.is_ignored("log")
    assert rules.is_ignored("log/a/b")
    assert not rules.is_ignored("logs/a")
    assert not rules.is_ignored("app/log/a")


def test_leading_slash_is_stripped() -> None:
    rules = IgnoreRules(["/tmp", "!/tmp/keep"])
    assert rules.patterns == ("tmp", "!tmp/keep")
    assert rules.is_ignored("tmp/x")
    assert not rules.is_ignored("tmp/keep")
    assert not rules.is_ignored("app/tmp/x")


def test_patterns_are_cleaned_like_go() -> None:
    rules = IgnoreRules(["  a/../b/./c/  ", "! /d//e", "", "   "])
    assert rules.patterns == ("b/c", "!d/e")


def test_exclusion_under_excluded_directory() -> None:
    rules = IgnoreRules(["log", "!log/.keep"])
    assert not rules.is_ignored("log/.keep")
    assert rules.is_ignored("log/development.log")
    assert rules.is_ignored("log")  # the directory itself stays excluded, like BuildKit


def test_parent_results_quirk_matches_buildkit() -> None:
    # BuildKit's walker hands each directory's per-pattern results to its children and moby
    # skips re-checking patterns that could not change the outcome at the directory; so the
    # second `a` is recorded as "no match" for `a` and `a/f` stays included.
    rules = IgnoreRules(["a", "!a/f", "a"])
    assert not rules.is_ignored("a/f")
    assert rules.is_ignored("a/g")
    assert rules.is_ignored("a")
    # `a/**` is judged on the file itself: it takes a/f out again (chain.layers.RUNTIME_PATTERNS;
    # the BuildKit of Docker 20.10 agrees: checked by hand with `docker buildx build`).
    rules = IgnoreRules(["a", "!a/f", "!a", "a", "a/**"])
    assert rules.is_ignored("a/f")
    assert rules.is_ignored("a")


def test_the_context_root_is_never_ignored() -> None:
    assert not ignored(["*", "**"], "")
    assert not ignored(["*", "**"], ".")


def test_may_descend_prunes_excluded_trees() -> None:
    rules = IgnoreRules([*DEFAULT_PATTERNS, "!log/.keep"])
    assert not rules.may_descend(".git")
    assert not rules.may_descend(".git/objects")
    assert not rules.may_descend("tmp")
    assert rules.may_descend("log")  # `!log/.keep` may re-include something inside
    assert rules.may_descend("app")
    assert rules.may_descend("")


def test_may_descend_is_conservative_with_wildcard_exclusions() -> None:
    rules = IgnoreRules([".git", "!**/keep.pem"])
    assert rules.may_descend(".git")
    assert not rules.is_ignored(".git/keep.pem")  # Docker really would send it
    rules = IgnoreRules(["vendor", "!vendor/*/keep"])
    assert rules.may_descend("vendor")
    assert rules.may_descend("vendor/x")
    assert not rules.may_descend("vendor/x/y")


# A small universe where every pattern combination is checked against the definition.
_UNIVERSE_PATTERNS = [
    "log",
    "!log/.keep",
    "*",
    "!app",
    "a/*",
    "!a/b/c",
    "**/*.pem",
    "!certs/keep.pem",
    "a/**",
    "!a/b",
    "a",
    "!**/c",
]
_UNIVERSE_PATHS = [
    "log/.keep",
    "log/x/y",
    "app/models/u.rb",
    "a/b/c/d",
    "a/b/c",
    "a/x.pem",
    "certs/keep.pem",
    "certs/other.pem",
    "z/c",
]


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


@pytest.mark.parametrize("size", [1, 2, 3])
def test_pruning_is_sound_and_fast_path_agrees(size: int) -> None:
    for combo in itertools.permutations(_UNIVERSE_PATTERNS, size):
        rules = IgnoreRules(combo)
        for path in _UNIVERSE_PATHS:
            parent = path.rpartition("/")[0]
            reference = rules._judge(path, rules._dir_result(parent))[0]
            assert rules.is_ignored(path) == reference, (combo, path)
            if any(not rules.may_descend(d) for d in _ancestors(path)):
                assert rules.is_ignored(path), (combo, path)


@pytest.mark.parametrize("bad", ["!", "! ", "[", "[]", "[a", "a[b-]", "[-a]", "a\\"])
def test_invalid_patterns_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        IgnoreRules([bad])


def test_read_dockerignore(tmp_path: Path) -> None:
    path = tmp_path / ".dockerignore"
    path.write_bytes(
        b"\xef\xbb\xbf# comment\r\n"
        b"node_modules\r\n"
        b"\n"
        b"   \n"
        b"/tmp/\n"
        b"!  /log/.keep\n"
        b" # not a comment: only column 0 starts one\n"
        b"last"
    )
    assert read_dockerignore(path) == [
        "node_modules",
        "tmp",
        "!log/.keep",
        "# not a comment: only column 0 starts one",
        "last",
    ]


def test_read_missing_dockerignore(tmp_path: Path) -> None:
    assert read_dockerignore(tmp_path / ".dockerignore") == []


def test_render_round_trips(tmp_path: Path) -> None:
    patterns = ["*", "!Gemfile", "!vendor/cache", "#literal"]
    text = render(patterns)
    assert text == "*\n!Gemfile\n!vendor/cache\n #literal\n"
    path = tmp_path / "Dockerfile.dockerignore"
    path.write_text(text)
    assert read_dockerignore(path) == patterns
    assert render([]) == ""


def test_render_rejects_line_breaks() -> None:
    with pytest.raises(ValueError, match="line break"):
        render(["a\nb"])


def test_rules_for_context_layers_user_patterns_after_defaults(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("node_modules\n!log/.keep\n!config/master.key\n")
    rules = rules_for_context(tmp_path, extra=["coverage"])
    assert rules.patterns[: len(DEFAULT_PATTERNS)] == DEFAULT_PATTERNS
    assert rules.patterns[-1] == "coverage"
    assert rules.is_ignored("node_modules/x.js")
    assert rules.is_ignored("coverage/index.html")
    assert not rules.is_ignored("log/.keep")
    assert not rules.is_ignored("config/master.key")
    assert rules.is_ignored(".git/HEAD")


def test_rules_for_context_without_dockerignore(tmp_path: Path) -> None:
    assert rules_for_context(tmp_path) == IgnoreRules(DEFAULT_PATTERNS)


def test_rules_for_context_reports_bad_pattern(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("[oops\n")
    with pytest.raises(InputError, match=r"\.dockerignore"):
        rules_for_context(tmp_path)


def test_non_utf8_names_match(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_bytes(b"caf\xe9*\n")
    rules = rules_for_context(tmp_path)
    assert rules.is_ignored(b"caf\xe9.rb".decode("utf-8", "surrogateescape"))
