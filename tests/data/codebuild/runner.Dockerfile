# The build container of tests/codebuild/test_codebuild_run.py: a stand-in for aws/codebuild/standard:7.0
# with what imgbuild's buildspecs use: bash, python3 with pip on PATH (a venv, like the pyenv
# Python of the standard image), git, and the docker CLI with buildx, both copied from the host
# (the context holds them) and talking to the host's daemon through the mounted socket.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-venv git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/python && /opt/python/bin/pip --version
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY docker /usr/local/bin/docker
COPY docker-buildx /usr/local/libexec/docker/cli-plugins/docker-buildx
