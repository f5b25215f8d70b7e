"""A chaos run's journal (JSON, one record per step) and its report (Markdown and HTML).

Written under ``DRC_HOME/chaos/`` as ``<run>.json``, ``<run>.md`` and ``<run>.html`` (the
workflow id with ``/`` made ``_``). Idempotent: the same result gives the same bytes, written
atomically over the same files, so a retry after a lost answer changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from temporalio import activity

from activities.reports import write_atomically
from drc.catalog import Catalog
from drc.chaos import ChaosResult
from drc.errors import ChaosError
from drc.names import CHAOS_JOURNAL
from reports.chaos import render_chaos
from runbooks.chaos import CHAOS_DIR, Experiment, experiment_path, load_experiment


class ChaosJournalActivities:
    """Writes a run's journal and report; built once per worker."""

    def __init__(self, home: Path, catalog: Catalog, folder: Path = CHAOS_DIR) -> None:
        self._home, self._catalog, self._folder = home, catalog, folder

    @activity.defn(name=CHAOS_JOURNAL)
    async def chaos_write_journal(self, result: ChaosResult) -> ChaosResult:
        """Write the journal and the report; return the result with their paths."""
        workflow_id = activity.info().workflow_id or "chaos"
        run = workflow_id.replace("/", "_")
        folder = self._home.resolve() / "chaos"
        journal, md, html = (folder / f"{run}.{ext}" for ext in ("json", "md", "html"))
        record = {**asdict(result), "workflow_id": workflow_id}
        record["journal"] = [{**asdict(e), "duration_s": e.duration_s} for e in result.journal]
        write_atomically(journal, json.dumps(record, indent=2, sort_keys=True) + "\n")
        markdown, page = render_chaos(result, self._experiment(result.experiment))
        write_atomically(md, markdown)
        write_atomically(html, page)
        return replace(result, journal_path=str(journal), report_path=str(md))

    def _experiment(self, name: str) -> Experiment | None:
        try:
            return load_experiment(experiment_path(name, self._folder), self._catalog)
        except ChaosError:
            return None  # the report says what the journal says; the file is gone or broken
