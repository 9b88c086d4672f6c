"""A bundle world: a YAML volume holding the examples, its control table (delta-rs) and the
``bundle:DIR`` folder the orchestrator writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from tests.example_files import EXAMPLES


class World:
    def __init__(self, tmp_path: Path):
        self.volume = tmp_path / "volume"
        self.volume.mkdir()
        (self.volume / "examples.yaml").write_text(EXAMPLES.read_text(encoding="utf-8"), encoding="utf-8")
        self.control = str(tmp_path / "tables" / "etl_control")
        self.manager = MetadataManager(self.control)
        self.manager.ensure_exists()
        self.bundle = tmp_path / "bundle_out"
        self.sync()

    def sync(self):
        return self.manager.sync_from_volume(str(self.volume))

    def orchestrator(self, **kwargs: Any) -> JobOrchestrator:
        return JobOrchestrator(self.control, target=f"bundle:{self.bundle}", **kwargs)

    def apply(self):
        return self.orchestrator().run_all_modules()

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        return {
            p.relative_to(self.bundle).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.bundle.rglob("*"))
            if p.is_file()
        }

    def edit(self, old: str, new: str) -> None:
        path = self.volume / "examples.yaml"
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, old
        path.write_text(text.replace(old, new), encoding="utf-8")
        self.sync()
