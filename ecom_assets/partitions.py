"""One dynamic partition per landing file, keyed by its file name."""

import dagster as dg

landing_files = dg.DynamicPartitionsDefinition(name="landing_files")
