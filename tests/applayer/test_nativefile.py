"""The registry-native path's reading of the app Dockerfile (applayer/nativefile.py, and the
BuildKit-exact reading it adds to applayer/dockerfile.py): which Dockerfiles qualify, why the
others do not, and what the ones that do set, with variables expanded as BuildKit expands them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from buildkit.applayer import dockerfile
from buildkit.applayer.nativefile import DEFAULT_PATH, Recipe, Step, analyse
from buildkit.chain import layers

SHIPPED = layers.shipped_dockerfile("app").read_text(encoding="utf-8")
BASE_ARGS = {"BASE_IMAGE": "registry.example/shop-base:abc123"}
BASE_ENV = ("PATH=/opt/ruby/bin:/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/root")
HEAD = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"


def recipe(
    text: str,
    build_args: Mapping[str, str] | None = None,
    base_env: Sequence[str] = BASE_ENV,
    **base: str,
) -> Recipe:
    found = analyse(text, {**BASE_ARGS, **(build_args or {})}, base_env, **base)
    assert isinstance(found, Recipe), found
    return found


def step(text: str, instruction: str) -> Step:
    """The one `instruction` step of HEAD + COPY + `text`."""
    found = recipe(HEAD + "COPY . /app/\n" + text).steps
    matching = [s for s in found if s.instruction == instruction]
    assert len(matching) == 1, found
    return matching[0]


def env_of(text: str, name: str, base_env: Sequence[str] = BASE_ENV) -> str:
    """`name`'s value as the last ENV of HEAD + COPY + `text` sets it."""
    steps = recipe(HEAD + "COPY . /app/\n" + text, base_env=base_env).steps
    pairs = dict(p for s in steps if s.instruction == "ENV" for p in s.pairs)
    return pairs[name]


# ---- the shipped Dockerfile --------------------------------------------------------------------


def test_shipped_dockerfile_is_a_recipe_with_its_defaults() -> None:
    found = recipe(SHIPPED, base_workdir="/app")
    assert (found.dest, found.owner, found.chmod, found.extra_dirs) == ("/app/", None, None, ())
    assert found.present_dirs == ("/", "/app")
    assert [s.instruction for s in found.steps] == [
        "COPY",
        "ARG",
        "ARG",
        "ARG",
        "ARG",
        "ENV",
        "ARG",
        "USER",
        "ARG",
        "ARG",
        "ENV",
        "EXPOSE",
        "CMD",
    ]
    env = dict(p for s in found.steps if s.instruction == "ENV" for p in s.pairs)
    assert env == {
        "RAILS_ENV": "production",
        "RAILS_LOG_TO_STDOUT": "1",
        "RAILS_SERVE_STATIC_FILES": "1",
        "LD_PRELOAD": "/usr/local/lib/libjemalloc.so",
        "APP_COMMAND": "bundle exec rails server -b 0.0.0.0",
        "PORT": "3000",
    }
    by = {s.instruction: s for s in found.steps}
    assert by["USER"].value == "app"
    assert by["EXPOSE"].words == ("3000/tcp",)
    assert by["CMD"].argv() == ["/bin/sh", "-c", "exec $APP_COMMAND"]  # not expanded
    assert not by["CMD"].shell_form
    assert [s.created_by for s in found.steps[:2]] == [
        "COPY . /app/ # buildkit",
        "ARG RAILS_ENV=production",
    ]
    assert by["EXPOSE"].created_by == "EXPOSE [3000/tcp]"
    assert found.steps[0].line == 9
    assert found.steps[0].text == "COPY . /app/"


@pytest.mark.parametrize(
    ("build_args", "user", "port", "command"),
    [
        ({}, "app", "3000", "bundle exec rails server -b 0.0.0.0"),
        ({"APP_USER": "deploy"}, "deploy", "3000", "bundle exec rails server -b 0.0.0.0"),
        ({"APP_PORT": "8080"}, "app", "8080", "bundle exec rails server -b 0.0.0.0"),
        (
            {"APP_COMMAND": "bin/puma -C config/puma.rb"},
            "app",
            "3000",
            "bin/puma -C config/puma.rb",
        ),
        (
            {"APP_USER": "1000:1000", "APP_PORT": "9292"},
            "1000:1000",
            "9292",
            "bundle exec rails server -b 0.0.0.0",
        ),
        (
            {"RAILS_ENV": "staging", "UNDECLARED": "x"},
            "app",
            "3000",
            "bundle exec rails server -b 0.0.0.0",
        ),
    ],
)
def test_shipped_dockerfile_takes_the_apps_build_args(
    build_args: dict[str, str], user: str, port: str, command: str
) -> None:
    found = recipe(SHIPPED, build_args, base_workdir="/app")
    by = {s.instruction: s for s in found.steps}
    env = dict(p for s in found.steps if s.instruction == "ENV" for p in s.pairs)
    assert (by["USER"].value, env["PORT"], env["APP_COMMAND"]) == (user, port, command)
    assert by["EXPOSE"].words == (f"{port}/tcp",)
    assert env["RAILS_ENV"] == build_args.get("RAILS_ENV", "production")
    assert "UNDECLARED" not in env
    # BuildKit's history shows the value the ARG took, build arg or default.
    assert f"ARG APP_PORT={port}" in [s.created_by for s in found.steps]


# ---- what needs a build ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            HEAD + "COPY . /app/\nRUN bundle exec bootsnap precompile\n",
            "Dockerfile line 4: RUN after the context COPY needs a build",
        ),
        (
            HEAD + "RUN apt-get update\nCOPY . /app/\n",
            "line 3: RUN before the context COPY needs a build",
        ),
        (HEAD + "COPY . /app/\nADD extra.tar /opt/\n", "line 4: ADD after"),
        (HEAD + "COPY . /app/\nHEALTHCHECK CMD curl -f localhost\n", "line 4: HEALTHCHECK after"),
        (HEAD + 'SHELL ["/bin/bash", "-c"]\nCOPY . /app/\n', "line 3: SHELL before"),
        (HEAD + "COPY . /app/\nONBUILD RUN x\n", "line 4: ONBUILD after"),
        (HEAD + "MAINTAINER me\nCOPY . /app/\n", "line 3: MAINTAINER before"),
        (
            HEAD + "COPY . /app/\nCOPY --from=assets /out /app/public\n",
            "line 4: COPY --from needs a build",
        ),
        (
            HEAD + "COPY Gemfile /app/\nCOPY . /app/\n",
            "line 3: a COPY other than the context `COPY . <dest>`",
        ),
        (HEAD + "COPY . /app/\nCOPY . /srv/\n", "line 4: a second `COPY . <dest>`"),
        (HEAD + "COPY --exclude=*.md . /app/\n", "line 3: COPY --exclude=*.md: needs a build"),
        (HEAD + "COPY --parents . /app/\n", "line 3: COPY --parents: needs a build"),
        (
            HEAD + "COPY --chown=app:app . /app/\n",
            "line 3: COPY --chown=app:app names a user: needs the base image's /etc/passwd",
        ),
        (HEAD + "COPY --chown=1000:app . /app/\n", "/etc/passwd"),
        (
            HEAD + 'COPY --chown="1000:1000" . /app/\n',
            "line 3: COPY: flags with quotes or escapes need a build",
        ),
        (HEAD + "COPY --chmod=u+x . /app/\n", "line 3: COPY --chmod=u+x is not an octal mode"),
        (HEAD + "COPY --chmod=17777 . /app/\n", "not an octal mode"),
        (HEAD + "COPY --link=maybe . /app/\n", "line 3: COPY --link=maybe: needs a build"),
        (
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS a\nFROM ${BASE_IMAGE}\nCOPY . /app/\n",
            "line 3: a second FROM (a multi-stage build) needs a build",
        ),
        (
            "ARG BASE_IMAGE\nFROM ruby:3.3\nCOPY . /app/\n",
            "line 2: FROM ruby:3.3 is not FROM ${BASE_IMAGE}",
        ),
        ("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}-slim\nCOPY . /app/\n", "is not FROM ${BASE_IMAGE}"),
        (
            "ARG BASE_IMAGE\nFROM --platform=linux/amd64 ${BASE_IMAGE}\nCOPY . /app/\n",
            "line 2: FROM --platform=linux/amd64 needs a build",
        ),
        (
            "FROM ${BASE_IMAGE}\nCOPY . /app/\n",
            "line 1: FROM ${BASE_IMAGE} without `ARG BASE_IMAGE` before it",
        ),
        (
            "ENV A=1\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            "line 1: ENV before FROM: BuildKit rejects it too",
        ),
        ("ARG BASE_IMAGE\n", "Dockerfile: no FROM"),
        (HEAD + "USER app\n", "Dockerfile: no `COPY . <dest>` of the context"),
        (
            "# escape=`\n" + HEAD + "COPY . /app/\n",
            "line 1: the `# escape=`` parser directive needs a build",
        ),
        (
            "# syntax=example.com/my/frontend:1\n" + HEAD + "COPY . /app/\n",
            "line 1: the `# syntax=example.com/my/frontend:1` parser directive",
        ),
        (
            "# syntax=docker/dockerfile:1\n# check=error=true\n" + HEAD + "COPY . /app/\n",
            "line 2: the `# check=error=true` parser directive",
        ),
        (
            "# syntax=docker/dockerfile:1\n# syntax=docker/dockerfile:1\n"
            + HEAD
            + "COPY . /app/\n",
            "line 2: only one `# syntax=` parser directive",
        ),
        (
            HEAD + "ARG TARGETARCH\nCOPY . /app/\n",
            "line 3: $TARGETARCH is the build's platform, which only BuildKit knows",
        ),
        (
            "ARG BASE_IMAGE\nARG ARCH=${TARGETARCH}\nFROM ${BASE_IMAGE}\nCOPY . /app/\n",
            "line 2: $TARGETARCH",
        ),
        (
            HEAD + "USER app\nWORKDIR /srv/app\nCOPY . .\n",
            "line 4: WORKDIR /srv/app is made as user app: needs a build",
        ),
        (HEAD + "COPY . /app/\nENV NAME=${APP%.rb}\n", "line 4: ${APP%...} is left to BuildKit"),
        (HEAD + 'COPY . /app/\nENV A="${B:?B must be set}"\n', "line 4: B: B must be set"),
        (HEAD + "COPY . /app/\nENV A=${B:?B must be set}\n", "line 4: can't find = in 'must'"),
        (
            HEAD + 'COPY . /app/\nENV A="unterminated\n',
            "line 4: unexpected end of statement while looking for matching double-quote",
        ),
        (HEAD + "COPY . /app/\nENV A=${B\n", "line 4: syntax error: missing '}'"),
        (HEAD + "COPY . /app/\nENV JUSTNAME\n", "line 4: must have two arguments"),
        (HEAD + "COPY . /app/\nENV A=1 B\n", "line 4: can't find = in 'B'"),
        (HEAD + "COPY . /app/\nSTOPSIGNAL SIGNOPE\n", "line 4: STOPSIGNAL SIGNOPE: invalid signal"),
        (
            HEAD + "COPY . /app/\nEXPOSE 80:80\n",
            "line 4: EXPOSE 80:80: the native path takes port[-port][/tcp|udp|sctp]",
        ),
        (HEAD + "COPY . /app/\nEXPOSE 80/http\n", "EXPOSE 80/http"),
        (HEAD + "COPY . /app/\nEXPOSE 70000\n", "EXPOSE 70000: invalid port range"),
        (
            HEAD + 'COPY . /app/\nCMD ["a", 1]\n',
            "line 4: when using JSON array syntax, arrays must be comprised of strings only",
        ),
        (HEAD + 'COPY . /app/\nVOLUME [""]\n', "line 4: VOLUME needs paths, and no empty ones"),
        (HEAD + "COPY . /app/\nUSER --x app\n", "line 4: USER --x: BuildKit takes no flags there"),
    ],
)
def test_dockerfiles_that_need_a_build_say_why(text: str, reason: str) -> None:
    found = analyse(text, BASE_ARGS, BASE_ENV)
    assert isinstance(found, str)
    assert reason in found
    assert "\n" not in found


def test_a_build_arg_that_picks_another_frontend_needs_a_build() -> None:
    found = analyse(HEAD + "COPY . /app/\n", {**BASE_ARGS, "BUILDKIT_SYNTAX": "x/y"}, BASE_ENV)
    assert found == "Dockerfile: the BUILDKIT_SYNTAX build arg picks another Dockerfile frontend"


@pytest.mark.parametrize(
    "text",
    [
        "# syntax=docker/dockerfile:1\n" + HEAD + "COPY . /app/\n",
        "# syntax = docker.io/docker/dockerfile:1.7-labs\n# escape=\\\n" + HEAD + "COPY . /app/\n",
        "# check=skip=JSONArgsRecommended\n" + HEAD + "COPY . /app/\n",
        "\ufeffARG BASE_IMAGE\r\nFROM ${BASE_IMAGE}\r\nCOPY . /app/\r\n",
        "ARG BASE_IMAGE\nFROM $BASE_IMAGE AS App\nCOPY --link . /app/\n",
        HEAD + "COPY --link=false --chown=1000 . /app/\n",
        HEAD + 'COPY [".", "/app/"]\n',
        # a `# escape=` below the first instruction is a comment
        HEAD + "# escape=`\nCOPY . /app/\n",
    ],
)
def test_dockerfiles_that_qualify(text: str) -> None:
    assert recipe(text).dest == "/app/"


# ---- reading as BuildKit reads -----------------------------------------------------------------


def test_logical_lines_join_continuations_as_buildkit_does() -> None:
    text = (
        "ENV PATH=/a:\\\n"  # joined as written: no blank inserted
        "/b \\\n"
        "  # a comment inside is dropped\n"
        "\n"  # so is a blank line
        "    C=1\n"
        "  \n"
        "LABEL a=b \\   \n"  # blanks after the escape do not matter
        "c=d\n"
        "RUN echo \\\\\n"  # an escaped escape does not continue
        "USER app\n"
    )
    assert dockerfile.logical_lines(text) == [
        (1, "ENV PATH=/a:/b     C=1"),
        (7, "LABEL a=b c=d"),
        (9, "RUN echo \\\\"),
        (10, "USER app"),
    ]
    assert env_of("ENV PATH=/a:\\\n/b\n", "PATH") == "/a:/b"


def test_parser_directives_stop_at_the_first_other_line() -> None:
    text = "#syntax = docker/dockerfile:1\n# Escape=\\\n# just a comment\n# check=x=y\nFROM a\n"
    assert dockerfile.parser_directives(text) == [
        (1, "syntax", "docker/dockerfile:1"),
        (2, "escape", "\\"),
    ]


@pytest.mark.parametrize(
    ("rest", "words"),
    [
        ('A="x y" B=z', ['A="x y"', "B=z"]),
        ("A='x  y'  B=\"\"", ["A='x  y'", 'B=""']),
        ('a\\ b "c\\"d" e\\', ["a\\ b", '"c\\"d"', "e"]),
        ("''", ["''"]),
        ("   ", []),
    ],
)
def test_parse_words_keeps_quotes_for_the_expansion(rest: str, words: list[str]) -> None:
    assert dockerfile.parse_words(rest) == words


# BuildKit's frontend/dockerfile/shell/envVarTest (a selection), with its env: every row is
# ProcessWord(word) -> result, "error" where BuildKit fails.
_LEX_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}
_ENV_VAR_TEST = r"""
hello|hello
he'll'o|hello
he'llo|error
he\'llo|he'llo
he\\'llo|error
abc\tdef|abctdef
"abc\tdef"|abc\tdef
"abc\\tdef"|abc\tdef
'abc\tdef'|abc\tdef
hello\|hello
hello\\|hello\
"hello|error
"hello\"|error
"hel'lo"|hel'lo
'hello\'|hello\
"''"|''
$.|$.
he$1x|hex
he$.x|he$.x
he$pwd.|he.
he$PWD|he/home
he\$PWD|he$PWD
he\\$PWD|he\/home
"he\$PWD"|he$PWD
"he\\$PWD"|he\/home
\${}|${}
${}|error
he${}xx|error
he${hi}xx|hexx
he${PWD}|he/home
he${.}|error
he${XXX:-000}xx|he000xx
he${PWD:-000}xx|he/homexx
he${XXX:-$PWD}xx|he/homexx
he${XXX:-${PWD:-yyy}}xx|he/homexx
he${XXX:-${YYY:-yyy}}xx|heyyyxx
he${XXX:YYY}|error
he${XXX?}|error
he${XXX:?}|error
he${PWD?}|he/home
he${NULL?}|he
he${NULL:?}|error
he${XXX:+${PWD}}xx|hexx
he${PWD:+${SHELL}}xx|hebashxx
he${PWD:+000}xx|he000xx
'he${XX}'|he${XX}
"he'$PWD'"|he'/home'
'\$PWD'|\$PWD
he${PWD|error
he${PWD:=000}xx|error
he${PWD:+${PWD}:}xx|he/home:xx
he${XXX:-\$PWD:}xx|he$PWD:xx
he${XXX:-\${PWD}z}xx|he${PWDz}xx
안'녕'하세요|안녕하세요
$KOREAN|한국어
${aaa}}|}
${aaa:-bbb}}|bbb}
${aaa:-bbb ${foo}|error
${aaa:-bbb {foo}|bbb {foo
${:-bbb}|error
${999:-bbb}aaa|bbbaaa
$@aaa|aaa
${#:-bbb}|bbb
$$|
"""


@pytest.mark.parametrize(
    ("word", "result"), [line.split("|") for line in _ENV_VAR_TEST.strip().splitlines()]
)
def test_expand_matches_buildkits_lexer(word: str, result: str) -> None:
    if result == "error":
        with pytest.raises(ValueError, match=r"."):
            dockerfile.expand(word, _LEX_ENV.get)
    else:
        assert dockerfile.expand(word, _LEX_ENV.get) == result


# BuildKit's frontend/dockerfile/shell/wordsTest (a selection): ProcessWords(word) -> words.
_WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("hello${hi}bye", ["hellohibye"]),
        ("hello${space}bye", ["helloabc", "defbye"]),
        ('hello"${space}"bye', ["helloabc  defbye"]),
        ('hello "${space}"bye', ["hello", "abc  defbye"]),
        ("hello${leading}def", ["hello", "ab", "cdef"]),
        ("hello${trailing}d", ["helloab", "c", "d"]),
        ('hello" there  "', ["hello there  "]),
        ("hello\\ there", ["hello there"]),
        ('hello\\" there', ['hello"', "there"]),
        ("hello'$there'", ["hello$there"]),
        # BuildKit's nested ${...:-...} scan resets the word it was reading.
        ("30${X:-00}", ["00"]),
    ],
)
def test_expand_words_matches_buildkits_lexer(word: str, words: list[str]) -> None:
    assert dockerfile.expand_words(word, _WORDS_ENV.get) == words


# ---- what the instructions set -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ARG V=1\nENV X=$V", "1"),
        ("ARG V=1\nENV X=${V}", "1"),
        ("ENV X=${UNSET:-fallback}", "fallback"),
        ("ARG V=\nENV X=${V:-fallback}", "fallback"),
        ("ARG V=\nENV X=${V-fallback}", ""),
        ("ARG V=1\nENV X=${V:+set}", "set"),
        ("ENV X=${UNSET:+set}", ""),
        ("ARG V=\nENV X=${V+set}", "set"),
        ("ENV X=\\$HOME", "$HOME"),
        ("ENV X='$HOME'", "$HOME"),
        ('ENV X="$HOME/x y"', "/root/x y"),
        ("ENV X=$HOME/bin", "/root/bin"),  # the base image's Env
        ("ENV X=${UNSET}", ""),
        ("ARG V=a\nARG W=${V}b\nENV X=$W", "ab"),  # a default sees earlier ARGs
        ("ARG A=1 B=$A\nENV X=$B", "1"),  # and earlier pairs of its own ARG
        ("ENV X=a\\ b", "a b"),
        ("ENV X a  b 'c'", "a  b c"),  # the legacy form: the rest of the line
        ('ENV "X"="q"', "q"),
    ],
)
def test_expansion_forms(text: str, value: str) -> None:
    assert env_of(text + "\n", "X") == value


def test_pairs_of_one_env_see_the_env_from_before_it() -> None:
    # The Dockerfile reference's own example.
    text = "ENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n"
    steps = recipe(HEAD + "COPY . /app/\n" + text).steps
    assert [s.pairs for s in steps if s.instruction == "ENV"] == [
        (("abc", "hello"),),
        (("abc", "bye"), ("def", "hello")),
        (("ghi", "bye"),),
    ]
    assert steps[-2].created_by == "ENV abc=bye def=hello"


@pytest.mark.parametrize(
    ("text", "build_args", "value"),
    [
        ("ENV X=$G", {}, ""),  # a global ARG is not seen in the stage...
        ("ARG G\nENV X=$G", {}, "global"),  # ...unless declared there again
        ("ARG G\nENV X=$G", {"G": "given"}, "given"),
        ("ARG G=local\nENV X=$G", {}, "local"),
        ("ARG G=local\nENV X=$G", {"G": "given"}, "given"),
        ("ENV X=$NOT_DECLARED", {"NOT_DECLARED": "given"}, ""),
        ("ARG TARGETARCH\nENV X=$TARGETARCH", {"TARGETARCH": "arm64"}, "arm64"),
        ("ENV V=env\nARG V=arg\nENV X=$V", {}, "arg"),  # BuildKit: the later one wins...
        ("ARG V=arg\nENV V=env\nENV X=$V", {"V": "given"}, "env"),  # ...so ENV after ARG
    ],
)
def test_arg_scope(text: str, build_args: dict[str, str], value: str) -> None:
    full = "ARG BASE_IMAGE\nARG G=global\nFROM ${BASE_IMAGE}\nCOPY . /app/\n" + text + "\n"
    steps = recipe(full, build_args).steps
    assert dict(p for s in steps if s.instruction == "ENV" for p in s.pairs)["X"] == value


def test_a_base_without_path_gets_buildkits_default() -> None:
    assert env_of("ENV X=$PATH:/x\n", "X", base_env=()) == DEFAULT_PATH + ":/x"
    assert env_of("ENV X=$PATH\n", "X").startswith("/opt/ruby/bin")


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ('LABEL a=1 "b c"="d e"', (("a", "1"), ("b c", "d e"))),
        (
            "LABEL org.opencontainers.image.title=${T:-shop}",
            (("org.opencontainers.image.title", "shop"),),
        ),
        ("LABEL legacy value with spaces", (("legacy", "value with spaces"),)),
    ],
)
def test_labels(text: str, pairs: tuple[tuple[str, str], ...]) -> None:
    assert step(text + "\n", "LABEL").pairs == pairs


@pytest.mark.parametrize(
    ("text", "ports", "created_by"),
    [
        ("EXPOSE 3000", ("3000/tcp",), "EXPOSE [3000/tcp]"),
        ("EXPOSE 3000/udp", ("3000/udp",), "EXPOSE [3000/udp]"),
        ("EXPOSE 53/UDP", ("53/udp",), "EXPOSE [53/udp]"),
        ("ARG P=80\nEXPOSE ${P}/tcp", ("80/tcp",), "EXPOSE [80/tcp]"),
        (
            "EXPOSE 8000-8002",
            ("8000/tcp", "8001/tcp", "8002/tcp"),
            "EXPOSE [8000/tcp 8001/tcp 8002/tcp]",
        ),
        ('ARG PORTS="443 80"\nEXPOSE $PORTS', ("443/tcp", "80/tcp"), "EXPOSE [443/tcp 80/tcp]"),
        (
            "EXPOSE 8080 443",
            ("443/tcp", "8080/tcp"),
            "EXPOSE [443/tcp 8080/tcp]",
        ),  # sorted as written
        ("EXPOSE $UNSET", (), "EXPOSE []"),
    ],
)
def test_expose(text: str, ports: tuple[str, ...], created_by: str) -> None:
    found = step(text + "\n", "EXPOSE")
    assert (found.words, found.created_by) == (ports, created_by)


@pytest.mark.parametrize(
    ("text", "words", "shell_form", "argv"),
    [
        ('CMD ["bin/rails", "server"]', ("bin/rails", "server"), False, ["bin/rails", "server"]),
        (
            "CMD bin/rails server -p $PORT",
            ("bin/rails server -p $PORT",),
            True,
            ["/bin/sh", "-c", "bin/rails server -p $PORT"],
        ),
        (
            'CMD ["sh", "-c", "echo ${HOME}"]',
            ("sh", "-c", "echo ${HOME}"),
            False,
            ["sh", "-c", "echo ${HOME}"],
        ),
        ("CMD [not json", ("[not json",), True, ["/bin/sh", "-c", "[not json"]),
        ("CMD []", (), False, []),
    ],
)
def test_cmd_is_never_expanded(
    text: str, words: tuple[str, ...], shell_form: bool, argv: list[str]
) -> None:
    found = step("ENV PORT=1\n" + text + "\n", "CMD")
    assert (found.words, found.shell_form, found.argv()) == (words, shell_form, argv)
    if shell_form:  # the base image's SHELL, when it has one, runs it
        assert found.argv(["/bin/bash", "-lc"]) == ["/bin/bash", "-lc", words[0]]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("USER app", "app"),
        ("ARG U=1000\nUSER ${U}:${U}", "1000:1000"),
        ('USER "app"', "app"),
    ],
)
def test_user(text: str, value: str) -> None:
    assert step(text + "\n", "USER").value == value


@pytest.mark.parametrize(("signal"), ["SIGTERM", "TERM", "sigquit", "9", "SIGRTMIN+3"])
def test_stopsignal(signal: str) -> None:
    assert step(f"STOPSIGNAL {signal}\n", "STOPSIGNAL").value == signal


@pytest.mark.parametrize(
    ("text", "paths", "created_by"),
    [
        ("VOLUME /data", ("/data",), "VOLUME [/data]"),
        ("VOLUME /a /b", ("/a", "/b"), "VOLUME [/a /b]"),
        ('ARG D=/data\nVOLUME ["$D", "/cache"]', ("/data", "/cache"), "VOLUME [/data /cache]"),
    ],
)
def test_volume(text: str, paths: tuple[str, ...], created_by: str) -> None:
    found = step(text + "\n", "VOLUME")
    assert (found.words, found.created_by) == (paths, created_by)


# ---- the COPY and the directories --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "workdir", "dest", "extra_dirs", "present_dirs"),
    [
        ("COPY . /app/", "/", "/app/", (), ("/",)),
        ("COPY . /app", "/app", "/app/", (), ("/", "/app")),
        ("COPY . .", "/srv/app", "/srv/app/", (), ("/", "/srv", "/srv/app")),
        ("COPY . app/", "/srv", "/srv/app/", (), ("/", "/srv")),
        ("ARG D=/opt/shop\nCOPY . $D/", "/", "/opt/shop/", (), ("/",)),
        ("WORKDIR /srv/app\nCOPY . .", "/", "/srv/app/", ("/srv/app",), ("/", "/srv", "/srv/app")),
        ("WORKDIR /srv\nCOPY . app", "/", "/srv/app/", ("/srv",), ("/", "/srv")),
        ("WORKDIR sub\nCOPY . .", "/app", "/app/sub/", ("/app/sub",), ("/", "/app", "/app/sub")),
        ("COPY . /app/\nWORKDIR /app", "/", "/app/", (), ("/",)),  # the COPY made it
        ("COPY . /app/\nWORKDIR /app/tmp", "/", "/app/", ("/app/tmp",), ("/",)),
        (
            "COPY . /app/\nWORKDIR /app\nWORKDIR tmp\nWORKDIR /app/tmp",
            "/",
            "/app/",
            ("/app/tmp",),
            ("/",),
        ),
        ("WORKDIR /app\nCOPY . /app/", "/app", "/app/", (), ("/", "/app")),  # the base has it
        ("WORKDIR /\nCOPY . /app/", "/", "/app/", (), ("/",)),
    ],
)
def test_copy_dest_and_workdirs(
    text: str,
    workdir: str,
    dest: str,
    extra_dirs: tuple[str, ...],
    present_dirs: tuple[str, ...],
) -> None:
    found = recipe(HEAD + text + "\n", base_workdir=workdir)
    assert (found.dest, found.extra_dirs, found.present_dirs) == (dest, extra_dirs, present_dirs)


@pytest.mark.parametrize(
    ("text", "value", "created_by"),
    [
        ("WORKDIR /srv/app/", "/srv/app/", "WORKDIR /srv/app/"),  # absolute: as written
        ("WORKDIR /srv\nWORKDIR ../opt/./x", "/opt/x", "WORKDIR /opt/x"),  # relative: cleaned
        ("ARG W=/w\nWORKDIR $W", "/w", "WORKDIR /w"),
    ],
)
def test_workdir_as_buildkit_stores_it(text: str, value: str, created_by: str) -> None:
    found = [s for s in recipe(HEAD + "COPY . /app/\n" + text + "\n").steps if s.value]
    assert (found[-1].value, found[-1].created_by) == (value, created_by)


@pytest.mark.parametrize(
    ("flags", "owner", "chmod", "created_by"),
    [
        ("", None, None, "COPY . /app/ # buildkit"),
        ("--chown=1000:1000", (1000, 1000), None, "COPY --chown=1000:1000 . /app/ # buildkit"),
        ("--chown=1000", (1000, 1000), None, "COPY --chown=1000 . /app/ # buildkit"),
        ("--chown=root", (0, 0), None, "COPY --chown=root . /app/ # buildkit"),
        ("--chown=0:1000", (0, 1000), None, "COPY --chown=0:1000 . /app/ # buildkit"),
        ("--chown=${ID}:${ID}", (10, 10), None, "COPY --chown=10:10 . /app/ # buildkit"),
        ("--chown=$UNSET", None, None, "COPY . /app/ # buildkit"),
        ("--chmod=0755", None, 0o755, "COPY --chmod=0755 . /app/ # buildkit"),
        (
            "--link --chmod=644 --chown=1:2",
            (1, 2),
            0o644,
            "COPY --chown=1:2 --chmod=644 . /app/ # buildkit",
        ),
    ],
)
def test_copy_flags(
    flags: str, owner: tuple[int, int] | None, chmod: int | None, created_by: str
) -> None:
    found = recipe(HEAD + f"ARG ID=10\nCOPY {flags} . /app/\n")
    assert (found.owner, found.chmod, found.steps[-1].created_by) == (owner, chmod, created_by)
