"""A corpus of hostile landing files next to a generated one, through the ingest job alone (issue 11).

Per file: bronze holds exactly the file's physical lines, byte for byte; every bronze line is routed
to exactly one of silver.events, silver.events_duplicates or silver.events_quarantine (with a
reason); and the run summary names every file that did not land whole, with its cause.

The oracle below splits lines with plain bytes operations, independently of the numpy splitter:
the header's own ending decides what ends a line (CR alone: CR; otherwise LF, with a CR right
before the LF belonging to the ending), and a last line without an ending is still a line.
"""

from __future__ import annotations

import gzip
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ecom_assets import run_summary
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.lakehouse import landing as landing_module
from ecom_assets.lakehouse.landing import REES46, RETAILROCKET
from ecom_assets.resources import build_resources
from ecom_assets_tests.conftest import FIXTURES, ingest

REES_HEADER = REES46.header.encode()
RR_HEADER = RETAILROCKET.header.encode()


def rees(user: int, brand: bytes = b"", price: bytes = b"1.10", when: bytes = b"2019-10-01 00:00:00 UTC") -> bytes:
    return b",".join(
        [when, b"view", b"5802432", b"1487580009286598681", b"", brand, price, str(user).encode(), b"sess-%d" % user]
    )


def rr(user: int, stamp: bytes = b"1433221332117", event: bytes = b"view", transaction: bytes = b"") -> bytes:
    return b",".join([stamp, str(user).encode(), event, b"355908", transaction])


def lf(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@dataclass
class Expect:
    status: str = "accepted"
    cause: str | None = None  # a phrase the summary (and bronze.landing_files) gives as the cause


GROWING = "growing_while_read.csv"


def hostile_corpus(landing: Path, outside: Path) -> tuple[dict[str, bytes], dict[str, Expect]]:
    """Write the corpus into `landing`; return each file's bytes as the ingest reads them and what to expect."""
    rng = random.Random(11)
    files: dict[str, bytes] = {}
    expect: dict[str, Expect] = {}

    def put(name: str, data: bytes, status: str = "accepted", cause: str | None = None) -> None:
        files[name] = data
        expect[name] = Expect(status, cause)

    # Item 2: glob characters are literal; their neighbours would match the pattern.
    put("x_br_[ab].csv", lf(REES_HEADER, rees(1001), rees(1002)))
    put("x_br_a.csv", lf(REES_HEADER, *[rees(1100 + i) for i in range(4)]))
    put("x_br_b.csv", lf(REES_HEADER, *[rees(1200 + i) for i in range(5)]))
    put("x_glob_*.csv", lf(REES_HEADER, rees(1301), rees(1302), rees(1303)))
    put("x_glob_1.csv", lf(REES_HEADER, *[rees(1400 + i) for i in range(6)]))
    put("x_glob_22.csv", lf(REES_HEADER, *[rees(1500 + i) for i in range(4)]))
    put("x_q?.csv", lf(REES_HEADER, rees(1601)))
    put("x_q1.csv", lf(REES_HEADER, rees(1701), rees(1702)))
    # Item 3: every line of a readable file lands byte for byte.
    put("latin1_brand.csv", lf(REES_HEADER, rees(2001, brand=b"l\xe9oreal"), rees(2002, brand=b"runail")))
    put("mixed_lf_crlf.csv", REES_HEADER + b"\r\n" + rees(2101) + b"\n" + rees(2102) + b"\r\n" + b"\r\n" + rees(2103))
    put("long_line.csv", lf(REES_HEADER, rees(2201, brand=b"b" * (2_500_000)), b"x" * 2_200_000, rees(2202)))
    put("unit_separator.csv", lf(REES_HEADER, rees(2301, brand=b"a\x1fb"), b"\x1f".join([b"1", b"2"]), rees(2302)))
    put("header_then_binary.csv", REES_HEADER + b"\n" + bytes(rng.getrandbits(8) for _ in range(20_000)))
    put("nul_in_brand.csv", lf(REES_HEADER, rees(2401, brand=b"ru\x00nail"), rees(2402)))
    gz_lines = lf(REES_HEADER, *[rees(2500 + i, brand=b"brand%d" % i) for i in range(3000)])
    whole = gzip.compress(gz_lines, mtime=0)
    put("truncated.csv.gz", whole[: len(whole) * 2 // 3], "truncated", "gzip stream is truncated")
    corrupt = bytearray(gzip.compress(lf(REES_HEADER, *[rees(2600 + i) for i in range(3000)]), mtime=0))
    for i in range(len(corrupt) // 2, len(corrupt) // 2 + 40):
        corrupt[i] ^= 0x5A
    put("corrupt.csv.gz", bytes(corrupt), "truncated", "gzip stream is corrupt")
    put("plain_text_named.csv.gz", lf(REES_HEADER, rees(2701)), "rejected", "not gzip-compressed")
    put("gzip_named_plain.csv", gzip.compress(lf(REES_HEADER, rees(2801))), "rejected", "gzip-compressed data")
    put("two_members.csv.gz", gzip.compress(lf(REES_HEADER, rees(2901))) + gzip.compress(lf(rees(2902), rees(2903))))
    put("trailing_garbage.csv.gz", gzip.compress(lf(RR_HEADER, rr(3001))) + b"garbage!", "truncated", "not gzip")
    put("empty_stream.csv.gz", gzip.compress(b""), "rejected", "empty")
    # Item 7: RFC 4180 quoting parses; broken quoting is quarantined.
    put(
        "quoted_fields.csv",
        lf(
            REES_HEADER,
            rees(3101, brand=b'"a,b"'),
            rees(3102, brand=b'"l""oreal"'),
            rees(3103, brand=b' "padded" '),
            b'"2019-10-01 00:00:00 UTC","view","5802432","1","","x","1.10","3104","s"',
        ),
    )
    put("broken_quotes.csv", lf(REES_HEADER, rees(3201, brand=b'a"b'), rees(3202, brand=b'"open'), b'"' * 7))
    # Item 8: copies of a file under other names are duplicates, not new events.
    for name in ("rees46_quirks.csv", "rees46_quirks (1).csv"):
        put(name, (FIXTURES / "rees46_quirks.csv").read_bytes())
    put("rees46_quirks.csv.gz", gzip.compress((FIXTURES / "rees46_quirks.csv").read_bytes()))
    put("retailrocket_quirks.CSV.GZ", gzip.compress((FIXTURES / "retailrocket_quirks.csv").read_bytes()))
    # Item 11: upper case, symlinks, a file growing while read, CR-only line endings.
    put("UPPER_CASE.CSV", lf(REES_HEADER, rees(3301), rees(3302)))
    put("classic_mac.csv", REES_HEADER + b"\r" + rees(3401) + b"\r" + rees(3402) + b"\r")
    put("classic_mac_no_final_cr.csv", RR_HEADER + b"\r" + rr(3501) + b"\r" + rr(3502))
    put(GROWING, lf(REES_HEADER, *[rees(3600 + i) for i in range(50)]), "changed_during_load", "changed while")
    # Item 4 and 11's implausible values: they route to quarantine with a reason, whatever the rules.
    put("year_2099.csv", lf(REES_HEADER, rees(3701, when=b"2099-01-01 00:00:00 UTC"), rees(3702)))
    put(
        "years_0001_9999.csv",
        lf(REES_HEADER, rees(3801, when=b"0001-01-01 00:00:00 UTC"), rees(3802, when=b"9999-12-31 23:59:59 UTC")),
    )
    put("price_1e400.csv", lf(REES_HEADER, rees(3901, price=b"1" + b"0" * 400 + b".00"), rees(3902, price=b"1e400")))
    put("retailrocket_seconds.csv", lf(RR_HEADER, rr(4001, stamp=b"1433221332"), rr(4002, stamp=b"14332213321170")))
    # Files that cannot be read at all, and odd shapes.
    put("empty.csv", b"", "rejected", "empty")
    put("header_only_no_newline.csv", RR_HEADER, "header_only", "only a header")
    put("orders.csv", lf(b"order_id,amount", b"1,2"), "rejected", "unknown format")
    put("utf16.csv", (REES46.header + "\n").encode("utf-16"), "rejected", "unknown format")
    put("only_newlines.csv", b"\n\n\n", "rejected", "unknown format")
    put("bom_crlf.csv", b"\xef\xbb\xbf" + REES_HEADER + b"\r\n" + rees(4101) + b"\r\n")
    put("blank_and_space_lines.csv", lf(REES_HEADER, b"", b"   ", rees(4201), b"\t", b""))
    put("stray_cr_inside.csv", lf(REES_HEADER, rees(4301, brand=b"a\rb"), rees(4302)))
    put("many_fields.csv", lf(REES_HEADER, b"," * 50_000, rees(4401)))
    put('it\'s "quoted" $(touch pwned).csv', lf(REES_HEADER, rees(4501)))
    put("tab\tand\nnewline.csv", lf(RR_HEADER, rr(4601), rr(4602, event=b"transaction", transaction=b"8693.0")))
    put("événements été.csv", lf(REES_HEADER, rees(4701, brand="été".encode())))
    for name, data in files.items():
        (landing / name).write_bytes(data)
    secret = outside / "secret.txt"
    secret.write_bytes(b"root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n")
    os.symlink(secret, landing / "passwd_link.csv")
    files["passwd_link.csv"] = b""
    expect["passwd_link.csv"] = Expect("rejected", "symbolic link")
    os.mkfifo(landing / "a_fifo.csv")  # not a regular file: never listed, never read (a read would block)
    return files, expect


def readable_bytes(name: str, data: bytes) -> bytes:
    """What can be read of a file: gzip members decoded byte by byte up to a cut, corrupt byte or garbage."""
    if not name.lower().endswith(".gz"):
        return data
    out, rest = [], data
    while rest[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        for i in range(len(rest)):
            try:
                out.append(inflater.decompress(rest[i : i + 1]))
            except zlib.error:
                return b"".join(out)
            if inflater.eof:
                rest = rest[i + 1 :]
                break
        else:
            break  # cut short
    return b"".join(out)


def physical_lines(data: bytes) -> list[tuple[bytes, bytes]]:
    """(line, ending) for every physical line, the header first."""
    first_lf, first_cr = data.find(b"\n"), data.find(b"\r")
    cr_only = first_cr >= 0 and (first_lf < 0 or first_cr < first_lf) and data[first_cr + 1 : first_cr + 2] != b"\n"
    separator = b"\r" if cr_only else b"\n"
    parts = data.split(separator)
    lines = []
    for i, part in enumerate(parts):
        if i == len(parts) - 1:
            if part:
                lines.append((part, b""))
        elif separator == b"\n" and part.endswith(b"\r"):
            lines.append((part[:-1], b"\r\n"))
        else:
            lines.append((part, separator))
    return lines


@pytest.fixture
def appended_while_read(monkeypatch):
    """Append a line to GROWING right after the ingest read its first block (as a writer would)."""
    real = landing_module._limited_reader

    def reader(fd, size, problems):
        path = os.readlink(f"/proc/self/fd/{fd}")
        for index, block in enumerate(real(fd, size, problems)):
            yield block
            if index == 0 and path.endswith(GROWING):
                with open(path, "ab") as handle:
                    handle.write(rees(3699) + b"\n")

    monkeypatch.setattr(landing_module, "_limited_reader", reader)


def test_every_line_of_every_hostile_file_is_landed_and_routed(paths, instance, tmp_path, appended_while_read):
    generate(paths.landing, GeneratorConfig(events=20_000, days=5, seed=3))
    (generated,) = [p.name for p in paths.landing.iterdir()]
    files, expect = hostile_corpus(paths.landing, tmp_path)
    files[generated] = (paths.landing / generated).read_bytes()
    expect[generated] = Expect()
    assert len(files) >= 41

    results = ingest(paths, instance, raise_on_error=False)
    failed_checks = [
        f"{e.asset_key.to_user_string()} / {e.check_name}: {e.description}"
        for r in results
        for e in r.get_asset_check_evaluations()
        if not e.passed and e.severity != dg.AssetCheckSeverity.WARN
    ]
    assert all(r.success for r in results) and not failed_checks, failed_checks
    assert len(results) == len(files)  # upper case, symlink and all; the FIFO is not a landing file

    with build_resources(paths)["duckdb"].get_connection() as con:
        landing_rows = {
            r[0]: r[1:] for r in con.execute("SELECT source_file, status, message FROM bronze.landing_files").fetchall()
        }
        summary = "\n".join(run_summary.highlights(con, paths))
        for name, data in files.items():
            status, message = landing_rows[name]
            assert status == expect[name].status, (name, message)
            if expect[name].cause:
                assert expect[name].cause in message, (name, message)
            bronze = con.execute(
                "SELECT line_number, coalesce(raw_bytes, encode(raw_line)), line_ending FROM bronze.events "
                "WHERE source_file = ? ORDER BY line_number",
                [name],
            ).fetchall()
            if status == "rejected":
                assert bronze == [], name
            else:
                # Bronze lines equal the file's physical lines, byte for byte (line 1 is the header).
                header, *lines = physical_lines(readable_bytes(name, data))
                assert [(n, bytes(b), e.encode()) for n, b, e in bronze] == [
                    (n, line, ending) for n, (line, ending) in enumerate(lines, start=2)
                ], name
            # Every bronze line is routed to exactly one place, with a reason when quarantined.
            routed = con.execute(
                """SELECT line_number, 'event' FROM silver.events WHERE source_file = $f
                   UNION ALL SELECT line_number, 'duplicate of ' || duplicate_of_file || ':' || duplicate_of_line
                             FROM silver.events_duplicates WHERE source_file = $f
                             AND duplicate_of_file IS NOT NULL AND duplicate_of_line IS NOT NULL
                   UNION ALL SELECT line_number, 'quarantined: ' || reason
                             FROM silver.events_quarantine WHERE source_file = $f AND reason <> ''""",
                {"f": name},
            ).fetchall()
            assert sorted(n for n, _ in routed) == [n for n, _, _ in bronze], name
            # The summary names each file that did not land whole, with its cause.
            if status != "accepted":
                line = next((s for s in summary.splitlines() if run_summary.shown(name) in s), "")
                assert status in line and (expect[name].cause or "") in line, (name, summary)
        assert "SECRET-CONTENT" not in summary
        assert not con.execute(
            "SELECT count(*) FROM bronze.landing_files WHERE contains(coalesce(message, '') || coalesce(header, ''), "
            "'SECRET-CONTENT')"
        ).fetchone()[0]

        # Item 2: the bracket file landed its own 2 lines; each neighbour once.
        per_file = dict(con.execute("SELECT source_file, count(*) FROM bronze.events GROUP BY 1").fetchall())
        assert per_file["x_br_[ab].csv"] == 2 and per_file["x_glob_*.csv"] == 3 and per_file["x_q?.csv"] == 1
        assert per_file["x_br_a.csv"] == 4 and per_file["x_glob_1.csv"] == 6 and per_file["x_q1.csv"] == 2
        # Item 7: quoted fields parse; broken quoting is quarantined with that reason.
        brands = {
            r[0]
            for r in con.execute("SELECT brand FROM silver.events WHERE source_file = 'quoted_fields.csv'").fetchall()
        }
        assert {"a,b", 'l"oreal', "padded", "x"} <= brands
        quarantined = con.execute(
            "SELECT count(*) FROM silver.events_quarantine WHERE source_file = 'broken_quotes.csv' "
            "AND reason LIKE 'malformed CSV quoting%'"
        ).fetchone()[0]
        assert quarantined == 3
        # Item 3: the Latin-1 brand kept its bytes, flagged, and quarantined with the reason.
        assert con.execute(
            "SELECT raw_bytes, reason FROM bronze.events "
            "JOIN silver.events_quarantine USING (source_file, line_number) WHERE source_file = 'latin1_brand.csv'"
        ).fetchall() == [
            (rees(2001, brand=b"l\xe9oreal"), "invalid UTF-8 (the exact bytes are in bronze.events.raw_bytes)")
        ]
        # Item 8: three copies of the quirks file hold its 4 events once; the rest are duplicates.
        copies = ("rees46_quirks.csv", "rees46_quirks (1).csv", "rees46_quirks.csv.gz")
        events = con.execute(
            "SELECT count(*) FROM silver.events WHERE list_contains(?, source_file)", [list(copies)]
        ).fetchone()[0]
        assert events == 4
        # Item 11: the CR-only file is recognised, and its events parse.
        assert con.execute("SELECT count(*) FROM silver.events WHERE source_file = 'classic_mac.csv'").fetchone() == (
            2,
        )
