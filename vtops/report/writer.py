"""The page on disk, written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from city.profile import CityProfile
from vtops.report.language import Language
from vtops.report.page import render_page
from vtops.report.queries import ReportData


def write_report(path: Path, data: ReportData, language: Language, profile: CityProfile) -> int:
    """Render and write the page; returns its size in bytes. A temporary file renamed into
    place, so that a leader never opens half a report."""
    html = render_page(data, language, profile).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(html)
    os.replace(partial, path)
    return len(html)
