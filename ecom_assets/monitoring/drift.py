"""Data drift between a reference sample (a model's training features) and a current batch.

Evidently 0.7 does the statistics: `Report([DataDriftPreset()])` picks a test per column by type
and size (K-S / chi-square / Z-test p-values on small samples, Wasserstein / Jensen-Shannon
distances on large ones). We read its per-column verdicts back and compare the drifted share with
our own threshold (Evidently 0.7 has no dataset-level drift flag). No Dagster import.
"""

from __future__ import annotations

import html as html_text
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ecom_assets.publishing import replaced_atomically, write_atomically

DEFAULT_SAMPLE_ROWS = 5_000  # per side: keeps a report to seconds whatever the batch size
SAMPLE_SEED = 7


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    test: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftSummary:
    model: str
    batch: str
    reference_rows: int
    current_rows: int
    sample_rows: int
    columns: list[ColumnDrift] = field(default_factory=list)
    report_path: str = ""
    reference: str = "training features"  # what the batch is compared with, for the report's title

    @property
    def title(self) -> str:
        return f"Data drift of the {self.model} model: batch {self.batch} vs {self.reference}"

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    def crosses(self, threshold: float) -> bool:
        return bool(self.columns) and self.drift_share >= threshold

    def to_json(self) -> str:
        return json.dumps(
            {**asdict(self), "drift_share": self.drift_share, "drifted_columns": self.drifted_columns}, indent=2
        )

    @classmethod
    def from_json(cls, text: str) -> DriftSummary:
        raw = json.loads(text)
        columns = [ColumnDrift(**c) for c in raw.pop("columns")]
        raw.pop("drift_share"), raw.pop("drifted_columns")
        return cls(columns=columns, **raw)

    def markdown(self) -> str:
        rows = ["| column | test | score | threshold | drifted |", "|---|---|---|---|---|"]
        rows += [
            f"| {c.column} | {c.test} | {c.score:.4g} | {c.threshold:g} | {'**yes**' if c.drifted else 'no'} |"
            for c in self.columns
        ]
        return "\n".join(rows)


def sample(frame: pd.DataFrame, rows: int, seed: int = SAMPLE_SEED) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    model: str,
    batch: str,
    columns: list[str] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    reference_name: str = "training features",
) -> tuple[DriftSummary, object]:
    """Run Evidently on (samples of) the shared columns; return our summary and its snapshot."""
    columns = columns or [c for c in reference.columns if c in current.columns]
    if not columns:
        raise ValueError("reference and current batch share no column to compare")
    if reference.empty or current.empty:
        raise ValueError(f"cannot compare drift: reference has {len(reference)} rows, current {len(current)}")
    ref, cur = sample(reference[columns], sample_rows), sample(current[columns], sample_rows)
    summary = DriftSummary(
        model=model,
        batch=batch,
        reference_rows=len(reference),
        current_rows=len(current),
        sample_rows=sample_rows,
        reference=reference_name,
    )
    # Imported here: Evidently takes ~2 s to import, and the CLI, the app and a no-op run never need it.
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report(
        [DataDriftPreset(columns=columns)],
        metadata={"model": model, "batch": batch, "reference": reference_name},
        include_tests=True,
    )
    snapshot = report.run(cur, ref, name=summary.title)
    for test in snapshot.dict()["tests"]:
        params = test["metric_config"]["params"]
        if not params.get("type", "").endswith("ValueDrift"):
            continue
        metric = next(m for m in snapshot.dict()["metrics"] if m["id"] == test["metric_config"]["metric_id"])
        summary.columns.append(
            ColumnDrift(
                column=params["column"],
                test=params["method"],
                score=float(metric["value"]),
                threshold=float(params["threshold"]),
                drifted=test["status"] == "FAIL",
            )
        )
    return summary, snapshot


def with_title(page: str, title: str) -> str:
    """Evidently's HTML with `title` as its <title> and a heading above the report.

    Evidently 0.7 keeps a run's name in the snapshot but does not render it in the saved HTML.
    """
    escaped = html_text.escape(title)
    page = page.replace("<head>", f"<head>\n<title>{escaped}</title>", 1)
    heading = f'<h1 style="font-family: sans-serif; margin: 16px 24px 0">{escaped}</h1>'
    return page.replace("<body>", f"<body>\n{heading}", 1)


def write_report(summary: DriftSummary, snapshot, reports_dir: Path, shown_in: str | None = None) -> Path:
    """`<model>_drift_<batch>.html` (titled with the model, batch and reference) plus a JSON summary
    beside it, each replaced atomically. `shown_in`: where the reports are read from, when
    `reports_dir` is a folder to upload (file_store, cluster profile); the summary names the report there."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    html = reports_dir / f"{summary.model}_drift_{summary.batch}.html"
    with replaced_atomically(html) as tmp:
        snapshot.save_html(str(tmp))
        tmp.write_text(with_title(tmp.read_text(encoding="utf-8"), summary.title), encoding="utf-8")
    summary.report_path = f"{shown_in.rstrip('/')}/{html.name}" if shown_in else str(html)
    write_atomically(html.with_suffix(".json"), summary.to_json())
    return html


@dataclass(frozen=True)
class DriftReportFile:
    """One `<model>_drift_<batch>.html` in the reports folder, with the JSON summary beside it if any."""

    model: str
    batch: str
    html: Path
    modified: float
    summary: dict | None

    @property
    def drift_share(self) -> float | None:
        return None if self.summary is None else self.summary.get("drift_share")

    @property
    def drifted_columns(self) -> list[str]:
        return [] if self.summary is None else list(self.summary.get("drifted_columns", []))

    def columns_frame(self) -> pd.DataFrame:
        return pd.DataFrame((self.summary or {}).get("columns", []))


def _read_summary(html: Path) -> dict | None:
    try:
        return json.loads(html.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None


def latest_reports(reports_dir: Path) -> dict[str, DriftReportFile]:
    """The newest drift report per model (by file time, then batch), for readers outside Dagster."""
    latest: dict[str, DriftReportFile] = {}
    for html in reports_dir.glob("*_drift_*.html") if reports_dir.exists() else []:
        model, _, batch = html.stem.partition("_drift_")
        found = DriftReportFile(model, batch, html, html.stat().st_mtime, _read_summary(html))
        if model not in latest or (found.modified, found.batch) > (latest[model].modified, latest[model].batch):
            latest[model] = found
    return latest
