"""Rendering the model image's Dockerfile and .dockerignore (no Docker)."""

from __future__ import annotations

import re
from pathlib import Path

from docker.utils.build import exclude_paths

from catwalk import __version__
from catwalk.generated import is_generated
from catwalk.image.dockerfile import (
    CONFIG_DIR,
    MODEL_DIR,
    ImageOptions,
    render_dockerfile,
    render_dockerignore,
)
from catwalk.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_defaults(example_copy) -> None:
    spec = load_spec(example_copy("rng"))
    text = render_dockerfile(spec, ImageOptions())
    assert is_generated(text)
    lines = _instructions(text)
    assert lines[0] == f"FROM catwalk:{__version__} AS system"
    env = next(line for line in lines if line.startswith("ENV "))
    assert f"MODEL_PATH={MODEL_DIR}" in env
    assert "SERVER_PORT=9090" in env
    assert "RUN_TESTS=false" in env
    assert "SERVER_CONFIG" not in env
    assert "EXPOSE 9090" in lines
    assert lines[-1] == 'CMD ["catwalk", "serve", "--no-install"]'
    users = [line for line in lines if line.startswith("USER ")]
    assert users[-1] == "USER 10001:0"  # non-root, group 0
    assert 'org.opencontainers.image.title="RNGModel"' in text
    assert 'org.opencontainers.image.version="0.0.1"' in text
    # rng has no requirements.txt: no pip step at all
    assert "install-requirements" not in text


def test_dockerfile_registry_and_base_image(example_copy) -> None:
    spec = load_spec(example_copy("rng"))
    with_registry = render_dockerfile(spec, ImageOptions(docker_registry="localhost:5000"))
    assert _instructions(with_registry)[0] == f"FROM localhost:5000/catwalk:{__version__} AS system"
    own_base = render_dockerfile(
        spec, ImageOptions(docker_registry="localhost:5000", base_image="my/base:1")
    )
    assert _instructions(own_base)[0] == "FROM my/base:1 AS system"


def test_requirements_are_installed_offline_in_a_stage_of_their_own(example_copy) -> None:
    spec = load_spec(example_copy("dataframe"))
    lines = _instructions(render_dockerfile(spec, ImageOptions()))
    stage = lines.index("FROM system AS requirements")
    copy_wheels = lines.index("COPY wheels/ /tmp/catwalk-wheels/")
    pip = next(i for i, line in enumerate(lines) if "catwalk install-requirements" in line)
    final = lines.index("FROM system")
    installed = lines.index("COPY --from=requirements /catwalk-installed/ /")
    code = lines.index(f"COPY model/ {MODEL_DIR}/")
    assert stage < copy_wheels < pip < final < installed < code
    assert "PIP_NO_INDEX=1" in lines[pip] and "PIP_FIND_LINKS=/tmp/catwalk-wheels" in lines[pip]
    # the final stage never sees the wheels
    assert not any("catwalk-wheels" in line for line in lines[final:])


def test_port_and_config_outside_the_model_folder(example_copy, tmp_path: Path) -> None:
    spec = load_spec(example_copy("rng"))
    config = tmp_path / "conf" / "application.yml"
    config.parent.mkdir()
    config.write_text("server: {workers: 1}\n")
    text = render_dockerfile(spec, ImageOptions(server_port=8080, server_config=config))
    lines = _instructions(text)
    env = next(line for line in lines if line.startswith("ENV "))
    assert f"SERVER_CONFIG={CONFIG_DIR}/application.yml" in env
    assert "SERVER_PORT=8080" in env
    assert "EXPOSE 8080" in lines
    assert f"read-only at {CONFIG_DIR}" in text
    # the host path is not baked in
    assert str(tmp_path) not in text


def test_config_inside_the_model_folder_is_copied_with_it(example_copy) -> None:
    folder = example_copy("rng")
    (folder / "conf").mkdir()
    (folder / "conf" / "app.yml").write_text("server: {workers: 1}\n")
    text = render_dockerfile(load_spec(folder), ImageOptions(server_config=folder / "conf/app.yml"))
    assert f"SERVER_CONFIG={MODEL_DIR}/conf/app.yml" in text


def test_ssl_config_inside_the_model_folder_is_mounted_not_baked(example_copy, ssl_config) -> None:
    folder = example_copy("rng")
    config = ssl_config(folder / "conf")
    text = render_dockerfile(load_spec(folder), ImageOptions(server_config=config))
    env = next(line for line in _instructions(text) if line.startswith("ENV "))
    assert f"SERVER_CONFIG={CONFIG_DIR}/application.yml" in env
    assert f"{MODEL_DIR}/conf" not in text
    assert "keys are never baked into images" in text


def test_labels_are_quoted(example_copy) -> None:
    folder = example_copy("rng")
    spec_file = folder / "model.yml"
    spec_file.write_text(
        spec_file.read_text()
        .replace("name: RNGModel", 'name: "RNG \\"quoted\\" Model"')
        .replace("description: >-", "description: >-\n  Multi-line $HOME\n ", 1)
    )
    text = render_dockerfile(load_spec(folder), ImageOptions())
    assert 'org.opencontainers.image.title="RNG \\"quoted\\" Model"' in text


def test_dockerignore() -> None:
    text = render_dockerignore()
    assert is_generated(text)
    patterns = [line for line in text.splitlines() if line and not line.startswith("#")]
    for pattern in ("**/.git", "**/.venv", "**/__pycache__", "**/.pytest_cache", "Dockerfile"):
        assert pattern in patterns
    for pattern in ("**/.env", "**/*.key", "**/*key.pem", "**/*.p12", "docker-compose.yml"):
        assert pattern in patterns
    assert "**/*.pem" not in patterns  # a model may need a CA bundle; keys are matched by name


def test_dockerignore_keeps_leaks_out_of_the_build_context(example_copy) -> None:
    """What the Docker SDK would send with the generated .dockerignore: the model, nothing else."""
    folder = example_copy("rng")
    leaks = [
        ".env", ".env.production", ".git/config", ".venv/bin/python", "venv/lib/x.py",
        "__pycache__/model.cpython-311.pyc", "sub/__pycache__/x.pyc", "conf/server.key",
        "conf/tls-key.pem", "sub/.env", "keystore.p12", ".ssh/id_rsa", "Dockerfile.dev",
        "docker-compose.yml", "compose.yaml", ".pytest_cache/v", ".mypy_cache/x", ".netrc",
        "conf/cert.pem",
    ]  # fmt: skip
    kept = ["weights/model.bin", "conf/app.yml", "conf/ca-bundle.pem", "sub/helper.py"]
    for name in leaks + kept:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x\n")
    text = render_dockerignore(("conf/cert.pem",))
    assert "/conf/cert.pem" in text.splitlines()
    (folder / ".dockerignore").write_text(text)
    patterns = [line for line in text.splitlines() if line and not line.startswith("#")]
    sent = exclude_paths(str(folder), patterns, dockerfile="Dockerfile")
    # The SDK always sends .dockerignore; the engine drops it when .dockerignore lists it.
    files = {p for p in sent if (folder / p).is_file()} - {".dockerignore"}
    assert files == {"model.py", "model.yml", "test_data.json", *kept}


def test_root_dockerfile_version_matches_the_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert f"ARG CATWALK_VERSION={__version__}\n" in text
    assert "ARG PYTHON_IMAGE=python:3.12-slim\n" in text
    lines = _instructions(text)
    assert lines[-1] == 'CMD ["catwalk", "serve"]'
    for label in ("title", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text
    assert any(line.startswith("USER ") and "root" not in line for line in lines)


def test_root_dockerignore_keeps_the_context_small() -> None:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert patterns[patterns.index("*") :][:1] == ["*"]  # everything out, then allow-list
    assert "!src/" in patterns
    assert "!example_models/rng/" in patterns
    # ...and never a key that happens to sit in an allowed folder
    for secret in ("**/.env", "**/*.key", "**/*key.pem"):
        assert patterns.index(secret) > patterns.index("!example_models/rng/")


def test_root_dockerfile_makes_the_example_readable_for_any_uid() -> None:
    lines = _instructions((ROOT / "Dockerfile").read_text())
    copy = lines.index("COPY example_models/rng /opt/catwalk-examples/rng")
    assert lines[copy + 1] == "RUN chmod -R a+rX,go-w /opt/catwalk-examples"


def test_the_model_s_own_labels_replace_the_base_image_s(example_copy) -> None:
    spec = load_spec(example_copy("dataframe"))
    text = render_dockerfile(spec, ImageOptions(base_image="my/base:1"))
    label = next(line for line in _instructions(text) if line.startswith("LABEL "))
    assert f'org.opencontainers.image.authors="{spec.contact.name} <{spec.contact.email}>"' in label
    assert 'org.opencontainers.image.base.name="my/base:1"' in label
    # catwalk's own (inherited from the base image) are blanked, not left to describe the model
    for key in ("source", "licenses", "url", "documentation", "vendor"):
        assert f'org.opencontainers.image.{key}=""' in label


def test_the_image_has_its_own_healthcheck(example_copy) -> None:
    lines = _instructions(render_dockerfile(load_spec(example_copy("rng")), ImageOptions()))
    [check] = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert check.endswith('CMD ["catwalk", "healthcheck"]')
    assert "--start-period=60s" in check


def test_build_prep_options_are_recorded_for_build(example_copy, tmp_path: Path) -> None:
    from catwalk.image.dockerfile import recorded_options

    folder = example_copy("rng")
    config = tmp_path / "conf" / "application.yml"
    config.parent.mkdir()
    config.write_text("server: {workers: 1}\n")
    options = ImageOptions(
        docker_registry="localhost:5000", base_image="b:1", server_port=8080, server_config=config
    )
    text = render_dockerfile(load_spec(folder), options)
    again = recorded_options(text, folder)
    assert again is not None
    assert again.server_config is not None and again.server_config.resolve() == config.resolve()
    assert (again.docker_registry, again.base_image, again.server_port) == (
        "localhost:5000",
        "b:1",
        8080,
    )
