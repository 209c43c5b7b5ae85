"""The scoring API under a storm of mixed valid and hostile requests (issue 11), as a contract.

A real uvicorn server with the default limits serves the models the whole graph trained. Several
client threads send more than 10,000 requests: valid sessions, purchase rows and bulk files, and the
inputs that once made it answer 500, drop the connection or eat gigabytes (NaN, Infinity, 1e400,
true and 10^40 as counts, absurd durations, lone surrogates, column and file names outside Latin-1
or with line breaks, CSV headers and JSON rows millions of fields wide). Every answer must be the
expected status (200 for the valid, a 4xx with a message for the hostile), never a 5xx or a dropped
connection, and the server's resident memory must stay bounded while it happens and after.
"""

from __future__ import annotations

import csv
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote

import httpx
import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, PURCHASE_FEATURES
from ecom_assets.serving.request_scoring import CART_RULES, MAX_COUNT
from ecom_assets_tests.api_server import copy_registry, running_api
from ecom_assets_tests.servers import resident_mb

REQUESTS = 10_200
CLIENTS = 4
SEED = 11

# Memory budgets over the resident size once warm (~480 MB: models, SHAP, matplotlib). Seen: +90 MB
# at the peak, +70 MB after. Before the fix one 19.8 MB CSV of 1.9M columns alone added 2.07 GB.
PEAK_GROWTH_MB = 400  # while the storm runs
SETTLED_GROWTH_MB = 200  # once it is over

COUNTS = [name for name, rule in CART_RULES.items() if rule.maximum == MAX_COUNT]
NUMBERS = [s.name for s in CART_FEATURES if not s.categorical]
REQUIRED_NUMBERS = [s.name for s in CART_FEATURES if not s.categorical and s.required]
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
ODD_NAMES = ["Ж", "客户编号", "id 🛒", "naïve", "a\r\nb", "line\nbreak", "cr\ronly", 'q"uote', "tab\tname", "é\r\n中"]


@dataclass(frozen=True)
class Probe:
    kind: str
    path: str
    expect: frozenset[int]
    method: str = "POST"
    content: bytes | None = None
    content_type: str = "application/json"
    upload: tuple[str, bytes] | None = None  # (file name, CSV) sent as multipart form field `file`
    check: Callable[[httpx.Response], str | None] | None = None  # an error message, or None


OK = frozenset({200})


def _session(rng: random.Random) -> dict:
    session = {
        "views_before_cart": rng.randint(0, 60),
        "cart_item_views": rng.randint(0, 12),
        "minutes_to_first_cart": round(rng.uniform(0, 300), 2),
        "experiment_group": rng.choice(["control", "treatment"]),
        "other_items_viewed": rng.randint(0, 9),
        "cart_item_price": round(rng.uniform(0, 900), 2),
        "previous_sessions": rng.randint(0, 40),
        "previous_purchases": rng.randint(0, 9),
    }
    if rng.random() < 0.5:
        session.update(
            previous_cart_sessions=rng.randint(0, 3), hour_of_day=rng.randint(0, 23), day_of_week=rng.randint(1, 7)
        )
    return session


def _purchase_row(rng: random.Random) -> dict:
    return {spec.name: round(rng.uniform(0, 50), 3) for spec in PURCHASE_FEATURES}


def _with_token(row: dict, field: str, token: str) -> bytes:
    """JSON text with a token Python's json reads but strict JSON does not (NaN, Infinity, 1e400)."""
    return json.dumps({**row, field: "__TOKEN__"}).replace('"__TOKEN__"', token).encode()


def _csv(rows: list[dict]) -> bytes:
    # Every text field quoted: pandas leaves a lone CR unquoted, which any reader takes for a line end.
    return pd.DataFrame(rows).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode()


def _passes_through(name: str) -> Callable[[httpx.Response], str | None]:
    def check(response: httpx.Response) -> str | None:
        listed = [unquote(n) for n in response.headers.get("x-passed-through", "").split(",")]
        return None if listed == [name] else f"X-Passed-Through {listed!r}, expected [{name!r}]"

    return check


def _names_the_upload(name: str) -> Callable[[httpx.Response], str | None]:
    def check(response: httpx.Response) -> str | None:
        disposition = response.headers.get("content-disposition", "")
        return None if disposition.startswith("attachment; filename=") else f"Content-Disposition {disposition!r}"

    return check


# -- the generators: one probe each, from a seeded Random -----------------------------------------


def valid_session(rng):
    return Probe("valid /predict", "/predict", OK, content=json.dumps(_session(rng)).encode())


def valid_session_with_plot(rng):
    return Probe("valid /predict?plot", "/predict?plot=true", OK, content=json.dumps(_session(rng)).encode())


def valid_purchase(rng):
    return Probe("valid /purchase/predict", "/purchase/predict", OK, content=json.dumps(_purchase_row(rng)).encode())


def valid_bulk_json(rng):
    rows = [{**_session(rng), "id": i} for i in range(rng.randint(1, 40))]
    return Probe("valid bulk JSON", "/bulk_predict", OK, content=json.dumps(rows).encode())


def valid_bulk_csv(rng):
    rows = [{"session_id": f"s{i}", **_session(rng)} for i in range(rng.randint(1, 40))]
    if rng.random() < 0.5:
        return Probe("valid bulk CSV body", "/bulk_predict", OK, content=_csv(rows), content_type="text/csv")
    return Probe("valid bulk CSV upload", "/bulk_predict", OK, upload=(f"carts_{rng.randint(0, 99)}.csv", _csv(rows)))


def valid_reads(rng):
    path = rng.choice(["/health", "/model", "/model?name=ecommerce_purchase_prediction_gb"])
    return Probe("valid GET", path, OK, method="GET")


def non_finite_session(rng):
    body = _with_token(_session(rng), rng.choice(NUMBERS), rng.choice(NON_FINITE))
    return Probe("NaN/Infinity/1e400 in /predict", "/predict", frozenset({422}), content=body)


def non_finite_purchase(rng):
    body = _with_token(_purchase_row(rng), rng.choice(PURCHASE_FEATURES).name, rng.choice(NON_FINITE))
    return Probe("NaN/Infinity/1e400 in /purchase/predict", "/purchase/predict", frozenset({422}), content=body)


def absurd_session(rng):
    field, value = rng.choice(
        [
            (rng.choice(COUNTS), True),
            (rng.choice(COUNTS), False),
            (rng.choice(COUNTS), 10**40),
            (rng.choice(COUNTS), 2**64),
            (rng.choice(COUNTS), 1_000_001),
            ("minutes_to_first_cart", 10_081),
            ("minutes_to_first_cart", 1e300),
            ("cart_item_price", True),
        ]
    )
    body = json.dumps({**_session(rng), field: value}).encode()
    return Probe("true/10^40 counts, absurd durations", "/predict", frozenset({422}), content=body)


def surrogate_session(rng):
    body = rng.choice(
        [
            b'{"\\ud800": 1, "views_before_cart": 1, "cart_item_views": 1, "minutes_to_first_cart": 1, '
            b'"experiment_group": "control"}',
            b'{"views_before_cart": 1, "cart_item_views": 1, "minutes_to_first_cart": 1, '
            b'"experiment_group": "\\udfff"}',
        ]
    )
    return Probe("lone surrogates in /predict", "/predict", frozenset({422}), content=body)


def many_keys_session(rng):
    extra = {f"k{i}": 0 for i in range(rng.randint(100, 5000))}
    return Probe("thousands of keys in /predict", "/predict", frozenset({422}), content=json.dumps(extra).encode())


def malformed_session(rng):
    body, content_type = rng.choice(
        [
            (b"{not json", "application/json"),
            (b"[" * 5000, "application/json"),
            (bytes(rng.getrandbits(8) for _ in range(200)), "application/json"),
            (b'{"views_before_cart": 1', "application/json"),
            (b"views_before_cart=1", "application/x-www-form-urlencoded"),
            (b"x" * 70_000, "application/json"),  # over the 64 KiB one-row limit
        ]
    )
    return Probe(
        "malformed or oversized /predict",
        "/predict",
        frozenset({400, 413, 422}),
        content=body,
        content_type=content_type,
    )


def odd_column_name(rng):
    name = rng.choice(ODD_NAMES)
    rows = [{**_session(rng), name: f"v{i}"} for i in range(rng.randint(1, 5))]
    if rng.random() < 0.5:
        return Probe(
            "column named outside Latin-1 / with CR/LF",
            "/bulk_predict",
            OK,
            content=_csv(rows),
            content_type="text/csv",
            check=_passes_through(name),
        )
    return Probe(
        "column named outside Latin-1 / with CR/LF",
        "/bulk_predict",
        OK,
        upload=("x.csv", _csv(rows)),
        check=_passes_through(name),
    )


def odd_file_name(rng):
    name = rng.choice(["Жёлтый.csv", "客户.CSV", "🛒 carts.csv", "naïve.csv", "a\r\nb.csv", "C:\\Users\\me\\x.csv"])
    return Probe(
        "upload named outside Latin-1",
        "/bulk_predict",
        OK,
        upload=(name, _csv([_session(rng)])),
        check=_names_the_upload(name),
    )


def non_finite_bulk(rng):
    token = rng.choice(["nan", "inf", "-inf", "1e400", "Infinity"])
    # An empty (or NaN) optional cell takes the documented default: NaN only where a value is required.
    field = rng.choice(REQUIRED_NUMBERS if token == "nan" else NUMBERS)
    body = _csv([_session(rng), {**_session(rng), field: "__TOKEN__"}]).replace(b"__TOKEN__", token.encode())
    if rng.random() < 0.5:
        return Probe(
            "NaN/inf/1e400 in a bulk CSV", "/bulk_predict", frozenset({422}), content=body, content_type="text/csv"
        )
    json_body = _with_token(_session(rng), field, rng.choice(NON_FINITE))
    return Probe("NaN/Infinity/1e400 in bulk JSON", "/bulk_predict", frozenset({400}), content=b"[" + json_body + b"]")


def absurd_bulk(rng):
    field, value = rng.choice(
        [(rng.choice(COUNTS), 10**40), (rng.choice(COUNTS), True), ("minutes_to_first_cart", 1e9)]
    )
    rows = [_session(rng), {**_session(rng), field: value}]
    return Probe("true/10^40 in bulk JSON", "/bulk_predict", frozenset({422}), content=json.dumps(rows).encode())


def wide_csv(rng):
    width = rng.randint(65, 5000)
    header = ",".join([*(s.name for s in CART_FEATURES[:4]), *(f"c{i}" for i in range(width))])
    body = (header + "\n" + ",".join(["1", "1", "1", "control", *(["0"] * width)]) + "\n").encode()
    return Probe(
        "wide CSV (65-5,000 columns)", "/bulk_predict", frozenset({413}), content=body, content_type="text/csv"
    )


def wide_json(rng):
    if rng.random() < 0.5:
        rows = [{**_session(rng), **{f"k{i}": 0 for i in range(rng.randint(61, 5000))}}]
    else:  # few keys per row, too many together
        rows = [{**_session(rng), f"id_{i}": i} for i in range(rng.randint(61, 200))]
    return Probe("wide JSON rows (65-5,000 keys)", "/bulk_predict", frozenset({413}), content=json.dumps(rows).encode())


def model_of_another_name(rng):
    return Probe("unknown model", f"/model?name=x{rng.randint(0, 9)}%C0%FF", frozenset({404}), method="GET")


GENERATORS: list[tuple[Callable[[random.Random], Probe], float]] = [
    (valid_session, 34),
    (valid_session_with_plot, 0.3),  # ~100 ms each: a few
    (valid_purchase, 5),
    (valid_bulk_json, 3),
    (valid_bulk_csv, 3),
    (valid_reads, 2),
    (non_finite_session, 10),
    (non_finite_purchase, 6),
    (absurd_session, 8),
    (surrogate_session, 3),
    (many_keys_session, 2),
    (malformed_session, 4),
    (odd_column_name, 5),
    (odd_file_name, 3),
    (non_finite_bulk, 3),
    (absurd_bulk, 2),
    (wide_csv, 2),
    (wide_json, 2),
    (model_of_another_name, 2),
]


def huge_probes() -> list[Probe]:
    """The issue's two worst: a 19.8 MB CSV of 1 row x 1.9M columns, a JSON row of 300k keys."""
    columns = 1_900_000
    header = ",".join([*(s.name for s in CART_FEATURES[:4]), *(f"c{i}" for i in range(columns))])
    csv_body = (header + "\n" + ",".join(["1", "1", "1", "control", *(["0"] * columns)]) + "\n").encode()
    json_body = json.dumps([{f"k{i}": i for i in range(300_000)}]).encode()
    too_large = frozenset({413})
    wide = Probe("1 x 1.9M-column CSV (19.8 MB)", "/bulk_predict", too_large, content=csv_body, content_type="text/csv")
    keys = Probe("JSON row of 300k keys", "/bulk_predict", too_large, content=json_body)
    return [wide, keys] * 4


def probes(count: int, seed: int = SEED) -> list[Probe]:
    rng = random.Random(seed)
    makers, weights = zip(*GENERATORS)
    out = [maker(rng) for maker in rng.choices(makers, weights, k=count - 8)]
    for probe in huge_probes():  # spread through the storm, not bunched at one end
        out.insert(rng.randrange(len(out)), probe)
    return out


# -- the storm ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no HTTP answer (dropped, reset, timed out)
    problem: str | None  # why this outcome breaks the contract


def send(http: httpx.Client, probe: Probe) -> Outcome:
    try:
        if probe.upload is not None:
            name, data = probe.upload
            response = http.post(probe.path, files={"file": (name, data, "text/csv")})
        elif probe.method == "GET":
            response = http.get(probe.path)
        else:
            response = http.post(probe.path, content=probe.content, headers={"content-type": probe.content_type})
    except httpx.HTTPError as exc:
        return Outcome(probe.kind, None, f"no answer: {type(exc).__name__}: {exc}")
    status = response.status_code
    if status not in probe.expect:
        return Outcome(probe.kind, status, f"{status}, expected {sorted(probe.expect)}: {response.text[:300]}")
    if status >= 400:
        try:
            body = response.json()
        except ValueError:
            return Outcome(probe.kind, status, f"{status} without a JSON body: {response.text[:200]}")
        message = body.get("message") or body.get("detail")
        if not isinstance(message, str) or not message:
            return Outcome(probe.kind, status, f"{status} without a message: {response.text[:200]}")
    elif probe.check is not None and (problem := probe.check(response)):
        return Outcome(probe.kind, status, problem)
    return Outcome(probe.kind, status, None)


def storm(url: str, work: list[Probe], clients: int = CLIENTS) -> list[Outcome]:
    def client(share: list[Probe]) -> list[Outcome]:
        with httpx.Client(base_url=url, timeout=120) as http:
            return [send(http, probe) for probe in share]

    with ThreadPoolExecutor(clients) as pool:
        shares = pool.map(client, [work[i::clients] for i in range(clients)])
        return [outcome for share in shares for outcome in share]


class MemoryWatch:
    """Samples a process's resident memory every `every` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak = pid, every, resident_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, resident_mb(self.pid))

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def report(outcomes: list[Outcome], seconds: float, rss: dict[str, float]) -> str:
    statuses = Counter("dropped" if o.status is None else o.status for o in outcomes)
    kinds = Counter(o.kind for o in outcomes)
    lines = [
        f"{len(outcomes):,} requests from {CLIENTS} clients in {seconds:.1f} s; "
        f"status {dict(sorted(statuses.items(), key=str))}",
        f"server RSS: warm {rss['before']:.0f} MB, peak {rss['peak']:.0f} MB, after {rss['after']:.0f} MB",
        *(f"  {count:5d}  {kind}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1])),
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    registry = copy_registry(built.paths, tmp_path_factory.mktemp("fuzz_registry"))
    log = tmp_path_factory.mktemp("fuzz_log") / "api.log"
    with running_api(registry, built.paths.home, log) as api:  # the default limits
        yield api


def test_ten_thousand_mixed_requests_get_no_5xx_no_dropped_connection_and_bounded_memory(server):
    work = probes(REQUESTS)
    assert len(work) >= 10_000
    # Warm up: every kind once, so lazy imports and caches are in memory before the baseline.
    seen: dict[str, Probe] = {}
    for probe in work:
        seen.setdefault(probe.kind, probe)
    warm = storm(server.url, list(seen.values()), clients=1)
    pid = server.process.pid
    before = resident_mb(pid)

    started = time.monotonic()
    with MemoryWatch(pid) as watch:
        outcomes = storm(server.url, work)
    seconds = time.monotonic() - started
    time.sleep(1)  # let the last responses' buffers go
    rss = {"before": before, "peak": watch.peak, "after": resident_mb(pid)}
    print("\n" + report(outcomes, seconds, rss))

    problems = [o for o in warm + outcomes if o.problem]
    assert not problems, "\n".join(f"{o.kind}: {o.problem}" for o in problems[:20]) + f"\n({len(problems)} in all)"
    assert not [o for o in outcomes if o.status is None or o.status >= 500]  # said by the above; kept explicit
    assert server.process.poll() is None, server.output()
    assert "Traceback" not in server.log.read_text(errors="replace"), server.output()
    assert rss["peak"] - before < PEAK_GROWTH_MB, report(outcomes, seconds, rss)
    assert rss["after"] - before < SETTLED_GROWTH_MB, report(outcomes, seconds, rss)
