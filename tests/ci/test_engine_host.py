"""Where test-image reaches a container: the engine's own host, from DOCKER_HOST (defect 3).

GitLab's Docker executor runs the job next to a ``docker:dind`` service: DOCKER_HOST is
``tcp://docker:2375`` and the containers' ports are published on the ``docker`` host, so
catwalk must connect there and have them published on the service's interfaces (its loopback
is not the job's). A local socket keeps everything on 127.0.0.1. (This machine's engine has
no bridge network, so containers use the host's network and nothing is published: the
dind path itself is not run end to end here; see docs/ci.md.)
"""

from __future__ import annotations

import pytest

from catwalk.image.engine_host import EngineHost, engine_host


@pytest.mark.parametrize(
    ("environ", "connect", "bind"),
    [
        ({}, "127.0.0.1", "127.0.0.1"),  # the default socket: this machine
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, "127.0.0.1", "127.0.0.1"),
        ({"DOCKER_HOST": "tcp://docker:2375"}, "docker", "0.0.0.0"),  # dind (Docker, k8s)
        ({"DOCKER_HOST": "tcp://docker:2376"}, "docker", "0.0.0.0"),  # dind with TLS
        ({"DOCKER_HOST": "tcp://localhost:2375"}, "127.0.0.1", "127.0.0.1"),
        ({"DOCKER_HOST": "tcp://127.0.0.2:2375"}, "127.0.0.2", "127.0.0.2"),
        ({"DOCKER_HOST": "tcp://[::1]:2375"}, "::1", "::1"),
        ({"DOCKER_HOST": "ssh://ci@build-host"}, "build-host", "0.0.0.0"),
        # The override wins, as TESTCONTAINERS_HOST_OVERRIDE does.
        ({"DOCKER_HOST": "tcp://docker:2375", "CATWALK_CONTAINER_HOST": "dind.internal"},
         "dind.internal", "0.0.0.0"),
        ({"CATWALK_CONTAINER_HOST": "127.0.0.1"}, "127.0.0.1", "127.0.0.1"),
        ({"DOCKER_HOST": "", "CATWALK_CONTAINER_HOST": " "}, "127.0.0.1", "127.0.0.1"),
    ],
)  # fmt: skip
def test_engine_host_follows_docker_host(environ: dict[str, str], connect: str, bind: str) -> None:
    host = engine_host(environ)
    assert (host.connect, host.bind) == (connect, bind)
    assert host.is_local == (bind != "0.0.0.0")


def test_an_ipv6_host_goes_into_a_url_in_brackets() -> None:
    assert EngineHost("::1", "::1").url_host() == "[::1]"
    assert EngineHost("docker", "0.0.0.0").url_host() == "docker"
