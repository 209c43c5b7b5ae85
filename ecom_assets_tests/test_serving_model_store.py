"""serving.model_store: what a client may learn when there is no model to serve."""

from __future__ import annotations

import sqlite3

from ecom_assets.ml.feature_specs import CART_MODEL_NAME
from ecom_assets.serving.model_store import ModelStore

SECRET = "/srv/private/ecom_home/mlflow.db"


def _failing(error: Exception):
    def call(*_):
        raise error

    return call


def test_a_failed_registry_lookup_names_the_failure_not_the_path(caplog):
    store = ModelStore(
        [CART_MODEL_NAME],
        f"sqlite:///{SECRET}",
        0,
        version_probe=_failing(sqlite3.OperationalError(f"unable to open database file {SECRET}")),
    )
    store.refresh()
    error = store.slot(CART_MODEL_NAME).error
    assert "registry could not be read (OperationalError" in error and SECRET not in error
    assert SECRET in caplog.text  # the operator still gets the details, in the log


def test_a_failed_load_names_the_version_not_the_path():
    store = ModelStore(
        [CART_MODEL_NAME],
        "sqlite:///x",
        0,
        loader=_failing(FileNotFoundError(f"{SECRET}/artifacts/model.pkl")),
        version_probe=lambda uri, name: "7",
    )
    store.refresh()
    error = store.slot(CART_MODEL_NAME).error
    assert "loading version 7 failed (FileNotFoundError" in error and SECRET not in error
