"""Every model's requirements in one environment: conflicts named before installing."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_fixtures import add_model

from catwalk.errors import RequirementsError
from catwalk.repository import discover
from catwalk.repository.requirements import check_conflicts, merged_file_text
from catwalk.requirements import Kept


def test_requirements_that_cannot_hold_together_name_both_files_and_lines(tmp_path: Path) -> None:
    a = add_model(tmp_path, "a", "a", "1", requirements="# pins\nnumpy==1.26.4\nsix\n")
    b = add_model(tmp_path, "b", "b", "1", requirements="six>=1\nnumpy>=2  # new API\n")
    with pytest.raises(RequirementsError) as caught:
        check_conflicts(discover(tmp_path), keep={})
    message = str(caught.value)
    assert (
        f"{b / 'requirements.txt'}:2 ('numpy>=2') conflicts with "
        f"{a / 'requirements.txt'}:2 ('numpy==1.26.4'): no version of numpy satisfies both"
    ) in message
    assert "six" not in message
    assert "nothing was installed" in message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("pandas>1", "pandas<1.5"),
        ("pandas>=2.0rc1", "pandas<2.1"),
        ("pandas>=1.0", "pandas<=1.0"),
        ("pandas==2.*", "pandas>=2.1"),
        ("pandas~=2.1", "pandas!=2.1.3"),
        ("pandas", "pandas==2.2.0"),
        ("pandas==2.2.0; python_version < '3'", "pandas==1.0"),  # not for this Python
    ],
)
def test_requirements_that_can_hold_together_pass(tmp_path: Path, first: str, second: str) -> None:
    add_model(tmp_path, "a", "a", "1", requirements=first + "\n")
    add_model(tmp_path, "b", "b", "1", requirements=second + "\n")
    check_conflicts(discover(tmp_path), keep={})


def test_a_requirement_against_catwalks_own_is_named(tmp_path: Path) -> None:
    a = add_model(tmp_path, "a", "a", "1", requirements="flask<2\n")
    keep = {"flask": Kept("Flask", "3.1.0", "Flask>=3.0")}
    with pytest.raises(RequirementsError) as caught:
        check_conflicts(discover(tmp_path), keep=keep)
    assert (
        f"{a / 'requirements.txt'}:1 ('flask<2') conflicts with catwalk's own dependency "
        in str(caught.value)
    )


def test_the_merged_file_includes_each_models_requirements(tmp_path: Path) -> None:
    a = add_model(tmp_path, "a", "a", "1", requirements="six\n")
    add_model(tmp_path, "b", "b", "1")
    text = merged_file_text(discover(tmp_path))
    assert f"-r {a / 'requirements.txt'}" in text
    assert text.count("-r ") == 1
