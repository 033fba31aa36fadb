"""Rendering deploy-prep's docker-compose.yml (no Docker)."""

from __future__ import annotations

from pathlib import Path

import yaml

from catwalk.deploy.compose import render_compose
from catwalk.generated import is_generated
from catwalk.image.dockerfile import CONFIG_DIR
from catwalk.spec import load_spec


def test_compose(example_copy, tmp_path: Path) -> None:
    folder = example_copy("dataframe")
    config = tmp_path / "conf" / "application.yml"
    config.parent.mkdir()
    config.write_text("server: {workers: 1}\n")
    spec = load_spec(folder)
    text = render_compose(
        spec,
        docker_registry="localhost:5000",
        server_port=8443,
        server_config=config,
        ssl=True,
        compose_dir=folder,
    )
    assert is_generated(text)
    doc = yaml.safe_load(text)
    service = doc["services"]["neurondataframe"]
    assert service["image"] == "localhost:5000/neurondataframe:1.0.0"
    assert service["ports"] == ["8443:8443"]
    assert service["environment"] == {
        "SERVER_PORT": "8443",
        "SERVER_CONFIG": f"{CONFIG_DIR}/application.yml",
        "RUN_TESTS": "false",
    }
    [volume] = service["volumes"]
    assert volume == {
        "type": "bind",
        "source": str(tmp_path / "conf"),  # outside the model folder: absolute
        "target": CONFIG_DIR,
        "read_only": True,
    }
    assert service["restart"] == "unless-stopped"
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "https://127.0.0.1:8443/status" in test[3]


def test_compose_config_inside_the_model_folder_is_relative(example_copy, ssl_config) -> None:
    folder = example_copy("rng")
    config = ssl_config(folder / "conf")
    doc = yaml.safe_load(
        render_compose(load_spec(folder), server_config=config, ssl=True, compose_dir=folder)
    )
    [volume] = doc["services"]["rngmodel"]["volumes"]
    assert volume["source"] == "./conf"  # moves with the model folder and its compose file


def test_compose_without_config(example_copy) -> None:
    spec = load_spec(example_copy("rng"))
    doc = yaml.safe_load(render_compose(spec))
    service = doc["services"]["rngmodel"]
    assert service["image"] == "rngmodel:0.0.1"
    assert "volumes" not in service
    assert "SERVER_CONFIG" not in service["environment"]
    assert "http://127.0.0.1:9090/status" in service["healthcheck"]["test"][3]
