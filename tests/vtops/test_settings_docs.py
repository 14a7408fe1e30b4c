"""The README lists every setting as the models define it, and links only inside the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from city.settings import settings_config
from vtops.settings_docs import END, README, START, settings_tables, undocumented, with_tables

ROOT = README.parent
PACKAGES = ("city", "schemas", "sinks", "streams", "simulator", "dashboards", "vtops")
_VARIABLE = re.compile(r"\bVTOPS_[A-Z0-9_]*[A-Z0-9]\b")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_settings_tables_are_what_the_models_say() -> None:
    readme = _readme()
    generated = readme[readme.index(START) : readme.index(END) + len(END)]
    assert generated == settings_tables(), "run `python -m vtops.settings_docs`"


def test_every_setting_has_a_description() -> None:
    assert undocumented() == []


def test_every_variable_the_code_reads_is_in_the_readme() -> None:
    """Variables read outside the models (os.environ) need a line of their own; `VTOPS_TEST_*`
    are hooks for tests, not for operators."""
    readme = _readme()
    named = {
        variable
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for variable in _VARIABLE.findall(path.read_text(encoding="utf-8"))
    }
    assert named, "the scan found no variable at all"
    missing = (v for v in named if f"`{v}`" not in readme and not v.startswith("VTOPS_TEST_"))
    assert sorted(missing) == []


def test_a_new_setting_changes_the_table() -> None:
    class WithOneMore(BaseSettings):
        model_config = settings_config()
        shiny_new_knob_s: float = Field(default=2.5, gt=0, description="what it turns")

    from vtops import settings_docs

    row = "| `VTOPS_SHINY_NEW_KNOB_S` | `2.5` | > 0 | what it turns |"
    assert row in "\n".join(settings_docs._area_table("extra", WithOneMore))
    assert row not in settings_tables()


def test_the_tables_need_their_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        with_tables("# a README without them\n")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def test_readme_anchors_name_its_headings() -> None:
    readme = _readme()
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE)}
    anchors = re.findall(r"\]\(#([^)]+)\)", readme)
    assert anchors, "the scan found no anchor at all"
    assert sorted(set(anchors) - headings) == []


def test_readme_links_stay_inside_the_repository() -> None:
    for target in _LINK.findall(_readme()):
        if re.match(r"[a-z]+://", target):
            continue
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), f"{target} leaves the repository"
        assert Path(path).exists(), f"{target} does not exist"
