import gzip

import pytest

from ecom_assets.lakehouse.landing import REES46, RETAILROCKET, LandingFileError, detect_format, list_landing_files


def test_detects_both_formats_with_bom_crlf_and_gzip(tmp_path):
    rees = tmp_path / "2019-Oct.csv"
    rees.write_bytes(b"\xef\xbb\xbf" + REES46.header.encode() + b"\r\nx\r\n")
    rr = tmp_path / "events.csv.gz"
    with gzip.open(rr, "wt") as handle:
        handle.write(RETAILROCKET.header + "\n1,2,view,3,\n")
    assert detect_format(rees) is REES46
    assert detect_format(rr) is RETAILROCKET


def test_empty_and_unknown_files_get_clear_messages(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(LandingFileError, match="empty.csv: the file is empty"):
        detect_format(empty)
    unknown = tmp_path / "orders.csv"
    unknown.write_text("order_id,amount\n1,2\n")
    with pytest.raises(LandingFileError) as info:
        detect_format(unknown)
    assert "unknown format, header is 'order_id,amount'" in str(info.value)
    assert RETAILROCKET.header in str(info.value) and REES46.header in str(info.value)


def test_landing_listing_ignores_temp_and_other_files(tmp_path):
    for name in ["a.csv", "b.csv.gz", ".c.csv.tmp", ".hidden.csv", "notes.txt", "d.CSV.bak"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "folder.csv").mkdir()
    assert [p.name for p in list_landing_files(tmp_path)] == ["a.csv", "b.csv.gz"]
    assert list_landing_files(tmp_path / "missing") == []
