"""Words, numbers and names in one language: what every section writes with."""

from __future__ import annotations

from city.profile import CityProfile
from vtops.report.language import NUMBERS, Language
from vtops.report.texts import LABELS, TEXTS
from vtops.report.view import Cell, Section


class Words:
    """Words, numbers and names in one language."""

    def __init__(self, language: Language, profile: CityProfile):
        self.language, self.t, self.labels = language, TEXTS[language], LABELS[language]
        self.numbers = NUMBERS[language]
        self.wards = {w.code: w.name for w in profile.wards}
        self.agencies: dict[str, str] = {a.agency: a.name for a in profile.agencies}
        self.cameras = {c.camera_id: c for c in profile.cameras}

    def count(self, value: float | None, metric: str | None = None, decimals: int = 0) -> Cell:
        return Cell(self.numbers.number(value, decimals), metric, numeric=True)

    def pct(self, value: float | None, metric: str | None = None) -> Cell:
        return Cell(self.numbers.percent(value), metric, numeric=True)

    def label(self, code: str) -> str:
        return self.labels.get(code, code)

    def ward(self, code: str) -> str:
        return self.t["citywide"] if code == "*" else self.wards.get(code, code)

    def place(self, camera_id: str) -> str:
        """A camera as a leader knows it: its road and ward."""
        camera = self.cameras.get(camera_id)
        if camera is None:
            return self.t["citywide"] if camera_id == "*" else camera_id
        return f"{camera.road} ({self.ward(camera.ward)})"


def missing_stream(section: Section, stream: str, w: Words) -> Section:
    """A section whose stream has no data in the period: it says so, and shows nothing."""
    section.notices.append(w.t["no_data_stream"].format(stream=w.t[f"stream.{stream}"]))
    return section
