"""Serving: the FastAPI scoring service (`api`), the Streamlit app (`app`) and their pure logic.

`request_scoring` (validation, risk bands, the waterfall chart) and `app_data` (published snapshots,
drift reports) import neither FastAPI nor Streamlit, so they are tested as plain functions.
"""
