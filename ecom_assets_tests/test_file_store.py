"""The local profile's file store is ECOM_HOME's folders as they always were (ecom_assets/file_store.py);
the cluster profile's (the bucket) is rehearsed in test_cluster_profile.py."""

from __future__ import annotations

import os

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.file_store import LANDING, PUBLISHED, REPORTS, LocalFiles, file_store
from ecom_assets.lakehouse.landing import list_landing_files
from ecom_assets.publishing import write_atomically


def test_the_local_store_is_ecom_homes_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("ECOM_PROFILE", raising=False)
    paths = EcomPaths(tmp_path / "home").ensure()
    files = file_store(paths)
    assert isinstance(files, LocalFiles)
    for name in ("b.csv", "a.CSV.GZ", ".c.csv.tmp", "notes.txt"):
        (paths.landing / name).write_bytes(b"x")
    os.symlink(tmp_path / "nowhere.csv", paths.landing / "dangling.csv")
    assert files.list_landing() == list_landing_files(paths.landing)
    assert files.landing_location == str(paths.landing)
    with files.landing_copy("b.csv") as path:
        assert path == paths.landing / "b.csv"  # read in place: nothing copied
    assert path.exists()
    # A dangling link is still there (bronze refuses it with a reason); only a name with nothing is gone.
    assert files.missing_landing(["b.csv", "dangling.csv", "gone.csv"]) == {"gone.csv"}
    assert files.url(LANDING, "b.csv") == str(paths.landing / "b.csv")


def test_the_local_store_writes_published_and_reports_in_place(tmp_path, monkeypatch):
    monkeypatch.delenv("ECOM_PROFILE", raising=False)
    paths = EcomPaths(tmp_path / "home")
    files = file_store(paths)
    with files.output(REPORTS) as reports:
        assert reports == paths.reports
        write_atomically(reports / "insights" / "chart.png", b"png")
        write_atomically(reports / "lift.png", b"lift")
    assert (paths.reports / "insights" / "chart.png").read_bytes() == b"png"
    assert files.url(REPORTS, "insights/chart.png") == str(paths.reports / "insights" / "chart.png")
    assert files.names(REPORTS) == ["lift.png"]  # the files directly in the folder, as the run summary lists
    assert files.read(PUBLISHED, "none.parquet") is None and files.read(REPORTS, "lift.png") == b"lift"
    assert files.exists(REPORTS, "lift.png") and files.exists(REPORTS, "insights/chart.png")
    assert not files.exists(PUBLISHED, "none.parquet") and not files.exists(REPORTS, "insights")  # a folder
    assert files.mirror(PUBLISHED) == paths.published  # the app reads the folder itself


def test_a_cluster_workers_home_holds_only_scratch_and_spill(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOM_PROFILE", "cluster")
    paths = EcomPaths(tmp_path / "worker").ensure()
    assert sorted(p.name for p in paths.home.iterdir()) == ["duckdb_tmp", "scratch"]
    monkeypatch.setenv("ECOM_PROFILE", "local")
    paths = EcomPaths(tmp_path / "local").ensure()
    assert sorted(p.name for p in paths.home.iterdir()) == ["duckdb_tmp", "landing", "published", "reports"]
