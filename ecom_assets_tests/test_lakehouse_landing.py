import gzip
import random
from unittest.mock import patch

import dagster as dg
import pytest

from ecom_assets.lakehouse import landing
from ecom_assets.lakehouse.landing import (
    REES46,
    RETAILROCKET,
    LandingFileError,
    detect_format,
    list_landing_files,
    open_landing_file,
)
from ecom_assets.partitions import landing_files
from ecom_assets.resources import build_resources
from ecom_assets.sensors import landing_sensor
from ecom_assets_tests.test_lakehouse_hostile_files import physical_lines, readable_bytes


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


def test_upper_case_names_and_symlinks_are_listed(tmp_path):
    """`*.CSV` lands; a symlink is listed so that bronze refuses it with a reason (not silently)."""
    (tmp_path / "2019-OCT.CSV").write_text("x")
    (tmp_path / "b.Csv.Gz").write_text("x")
    (tmp_path / "target.txt").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.txt")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere")
    assert [p.name for p in list_landing_files(tmp_path)] == ["2019-OCT.CSV", "b.Csv.Gz", "link.csv"]


def test_symlinks_and_misnamed_gzip_are_refused_with_the_cause(tmp_path):
    (tmp_path / "secret").write_text("root:x:0:0\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "secret")
    with pytest.raises(LandingFileError, match="symbolic link"):
        detect_format(tmp_path / "link.csv")
    (tmp_path / "plain.csv.gz").write_text(REES46.header + "\n")
    with pytest.raises(LandingFileError, match="not gzip-compressed"):
        detect_format(tmp_path / "plain.csv.gz")
    (tmp_path / "packed.csv").write_bytes(gzip.compress(REES46.header.encode() + b"\n"))
    with pytest.raises(LandingFileError, match="gzip-compressed data in a file named .csv"):
        detect_format(tmp_path / "packed.csv")


def test_a_cr_only_file_is_a_known_format(tmp_path):
    mac = tmp_path / "mac.csv"
    mac.write_bytes(RETAILROCKET.header.encode() + b"\r1433221332117,1,view,2,\r")
    assert detect_format(mac) is RETAILROCKET


def _landed(path) -> tuple[str | None, list[tuple[int, bytes, bytes]], list[str]]:
    with open_landing_file(path) as landing:
        rows = [
            (n, b if b is not None else t.encode(), e.encode())
            for batch in landing.batches()
            for n, t, b, e in zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)
        ]
        return landing.header, rows, landing.problems


@pytest.mark.parametrize("block_bytes", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("compressed", [False, True])
def test_lines_are_split_byte_for_byte_whatever_the_block_size(tmp_path, monkeypatch, block_bytes, compressed):
    """Random lines with LF, CRLF and stray CRs, invalid UTF-8 and NULs split like the plain-bytes oracle,
    however blocks cut them (a CRLF or a multi-byte character across two blocks)."""
    monkeypatch.setattr(landing, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(landing, "GZIP_PIECE", max(block_bytes // 2, 1))
    rng = random.Random(block_bytes)
    alphabet = [b"a", b",", b'"', b"\r", b"\x00", b"\x1f", "é".encode(), b"\xe9", b" ", b"\xff\xfe"]
    body = b"".join(
        b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) + rng.choice([b"\n", b"\r\n"])
        for _ in range(300)
    )
    data = b"\xef\xbb\xbf" + REES46.header.encode() + b"\r\n" + body + b"last line, no ending"
    path = tmp_path / ("f.csv.gz" if compressed else "f.csv")
    path.write_bytes(gzip.compress(data) if compressed else data)
    header, rows, problems = _landed(path)
    assert header == REES46.header and problems == []
    _, *lines = physical_lines(data)
    assert rows == [(n, line, ending) for n, (line, ending) in enumerate(lines, start=2)]
    assert rows[-1] == (len(lines) + 1, b"last line, no ending", b"")


@pytest.mark.parametrize("block_bytes", [1, 5, 1 << 20])
def test_may_hold_control_flags_exactly_the_lines_with_a_byte_that_can_start_a_control_character(
    tmp_path, monkeypatch, block_bytes
):
    """Below 0x20, DEL, or 0xC2 (the lead byte of U+0080-U+00BF); silver's control-character rule runs only
    on flagged lines, so a line must never hold one unflagged, however blocks cut the file."""
    monkeypatch.setattr(landing, "BLOCK_BYTES", block_bytes)
    rng = random.Random(block_bytes)
    alphabet = [b"a", b",", b"\t", b"\x00", b"\x7f", "\u0085".encode(), "\u00a0".encode(), "é".encode(), b"\xc2", b"\r"]
    lines = [b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6))) for _ in range(200)]
    lines.append(b"a\x01")  # the last line, with no ending (read apart from the blocks)
    path = tmp_path / "f.csv"
    path.write_bytes(REES46.header.encode() + b"\n" + b"\n".join(lines))
    with open_landing_file(path) as landed:
        flags = [flag for batch in landed.batches() for flag in batch.column("may_hold_control").to_pylist()]
    expected = [any(byte < 0x20 or byte in (0x7F, 0xC2) for byte in line.removesuffix(b"\r")) for line in lines]
    assert flags == expected and any(expected) and not all(expected)


@pytest.mark.parametrize("block_bytes", [3, 1 << 20])
def test_a_cr_only_file_splits_on_cr_even_across_blocks(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(landing, "BLOCK_BYTES", block_bytes)
    path = tmp_path / "mac.csv"
    path.write_bytes(RETAILROCKET.header.encode() + b"\r" + b"a\nb\r\rc")
    header, rows, _ = _landed(path)
    assert header == RETAILROCKET.header
    assert rows == [(2, b"a\nb", b"\r"), (3, b"", b"\r"), (4, b"c", b"")]


def test_an_over_long_line_stops_the_read_with_a_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(landing, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(landing, "BLOCK_BYTES", 256)  # blocks never exceed the longest line allowed
    path = tmp_path / "long.csv"
    path.write_bytes(REES46.header.encode() + b"\nshort\n" + b"x" * 5000 + b"\nafter\n")
    _, rows, problems = _landed(path)
    assert rows == [(2, b"short", b"\n")]
    assert "line 3 is longer than" in problems[0]


def test_a_truncated_gzip_keeps_what_is_readable(tmp_path):
    data = REES46.header.encode() + b"\n" + b"".join(b"line %d\n" % i for i in range(20_000))
    packed = gzip.compress(data)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    _, rows, problems = _landed(path)
    readable = readable_bytes(path.name, path.read_bytes())
    _, *lines = physical_lines(readable)
    assert 1000 < len(rows) < 20_000 and len(rows) == len(lines)
    assert rows[-1][1] == lines[-1][0]  # the last line cut short, as read
    assert "truncated" in problems[0]


def test_the_landing_sensor_ingests_upper_case_names_and_says_which_files_are_gone(paths, instance):
    (paths.landing / "2019-OCT.CSV").write_text(REES46.header + "\n")
    (paths.landing / "secret").write_text("root:x:0:0\n")
    (paths.landing / "link.csv").symlink_to(paths.landing / "secret")  # listed, so bronze refuses it aloud
    instance.add_dynamic_partitions(landing_files.name, ["gone.csv"])
    context = dg.build_sensor_context(instance=instance, resources={"settings": build_resources(paths)["settings"]})
    with patch.object(context.log, "warning") as warning:
        result = landing_sensor(context)
    assert sorted(r.partition_key for r in result.run_requests) == ["2019-OCT.CSV", "link.csv"]
    (message,) = [call.args[0] for call in warning.call_args_list]
    assert "gone.csv" in message and "retract" in message
