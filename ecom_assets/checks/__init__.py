"""Asset checks, one module per room; `definitions.py` loads them all with `load_asset_checks_from_modules`."""
