"""Drift checks: WARN when a model's latest drift report crosses the threshold (the sensor retrains)."""

import dagster as dg

from ecom_assets.assets.drift_reports import MONITORS, MonitoredModel, latest_drift_record
from ecom_assets.assets.ui_metadata import file_url, rounded
from ecom_assets.resources import EcomSettings


def _drift_check(monitor: MonitoredModel) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=monitor.key,
        name="drift_below_threshold",
        description="WARN when the share of drifted feature columns reaches the threshold.",
    )
    def _check(context: dg.AssetCheckExecutionContext, settings: EcomSettings) -> dg.AssetCheckResult:
        report = latest_drift_record(context.instance, monitor)
        if report is None:
            return dg.AssetCheckResult(
                passed=False, severity=dg.AssetCheckSeverity.WARN, description="no drift report found"
            )
        threshold = settings.drift_threshold
        drifted = report.drift_share >= threshold
        return dg.AssetCheckResult(
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{report.drift_share:.0%} of columns drifted (threshold {threshold:.0%}): {report.drifted_columns}"
                if drifted
                else f"{report.drift_share:.0%} of columns drifted, below {threshold:.0%}"
            ),
            metadata={
                "drift_share": rounded(report.drift_share),
                "drift_threshold": threshold,
                "drifted_columns": report.drifted_columns,
                "report": dg.MetadataValue.path(report.report_path),
                "report_link": file_url(report.report_path),
            },
        )

    return _check


drift_checks = [_drift_check(monitor) for monitor in MONITORS]
