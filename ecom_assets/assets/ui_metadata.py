"""Metadata values that show well in the Dagster UI (shared by the asset modules)."""

import base64

import dagster as dg


def image_metadata(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline: markdown with the image embedded as a data URL."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")
