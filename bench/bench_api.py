"""Load test of the scoring API on loopback: latency percentiles, throughput and errors.

    .venv/bin/python bench/bench_api.py                       # starts `ecom-assets serve` itself
    .venv/bin/python bench/bench_api.py --url http://127.0.0.1:8000   # or measures a running one

Phases (bounded: every phase sends a fixed number of requests at a fixed concurrency):
  1. POST /predict without plot, 20,000 requests, 8 connections, 1,000 distinct sessions in turn;
  2. POST /bulk_predict, 10,000-row JSON lists, 20 requests, 2 connections;
  3. POST /bulk_predict, the same rows as a 10,000-row CSV body, 10 requests, 2 connections.
Targets (issue 6): /predict p99 < 25 ms, bulk > 100,000 rows/s, zero 5xx. Exits 1 on any 5xx.

The client is a minimal HTTP/1.1 keep-alive client on asyncio (one connection per worker), so the
numbers are the server's, not a heavy client's. The server needs production models: `make demo`
trains them into `.ecom/` (or point MLFLOW_TRACKING_URI / ECOM_HOME at a registry that has them).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

TARGET_P99_MS, TARGET_ROWS_PER_S = 25.0, 100_000


def sessions(rows: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    previous = rng.poisson(2, rows)
    return [
        {
            "views_before_cart": int(v),
            "other_items_viewed": int(o),
            "cart_item_views": int(cv),
            "minutes_to_first_cart": float(m),
            "cart_item_price": float(p),
            "experiment_group": g,
            "previous_sessions": int(ps),
            "previous_purchases": int(pp),
            "hour_of_day": int(h),
        }
        for v, o, cv, m, p, g, ps, pp, h in zip(
            rng.poisson(3, rows),
            rng.poisson(1.5, rows),
            rng.poisson(1, rows),
            np.round(rng.gamma(2, 3, rows), 1),
            np.round(rng.gamma(2, 20, rows), 2),
            rng.choice(["control", "treatment"], rows),
            previous,
            rng.binomial(previous, 0.3),
            rng.integers(0, 24, rows),
        )
    ]


def request_bytes(host: str, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


@dataclass
class PhaseResult:
    name: str
    requests: int
    concurrency: int
    rows_per_request: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def line(self) -> str:
        ms = np.array(self.latencies) * 1e3
        rate = self.requests / self.seconds
        text = (
            f"{self.name:<28} {self.requests:>6} req  c={self.concurrency:<2} "
            f"p50 {np.percentile(ms, 50):7.2f} ms  p90 {np.percentile(ms, 90):7.2f} ms  "
            f"p99 {np.percentile(ms, 99):7.2f} ms  max {ms.max():7.1f} ms  {rate:8.1f} req/s"
        )
        if self.rows_per_request > 1:
            text += f"  {rate * self.rows_per_request:10,.0f} rows/s"
        return text + f"  errors {self.errors} (5xx {self.server_errors})"


async def run_phase(
    name: str, host: str, port: int, payloads: list[bytes], total: int, concurrency: int, rows_per_request: int = 1
) -> PhaseResult:
    counter = itertools.count()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (i := next(counter)) < total:
                started = time.perf_counter()
                writer.write(payloads[i % len(payloads)])
                await writer.drain()
                status, _ = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return PhaseResult(name, total, concurrency, rows_per_request, time.perf_counter() - started, latencies, statuses)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ecom_assets.cli", "serve", "--port", str(port), "--log-level", "warning"],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(url: str, process: subprocess.Popen | None, log: Path | None, seconds: float = 180) -> dict:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"the server exited:\n{log.read_text()[-3000:] if log else ''}")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    sys.exit(f"no answer from {url}/health within {seconds:.0f}s")


async def main_async(args: argparse.Namespace, url: str) -> list[PhaseResult]:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    single = [
        request_bytes(host, "/predict", json.dumps(s).encode(), "application/json") for s in sessions(1_000, seed=1)
    ]
    rows = sessions(args.bulk_rows, seed=2)
    bulk_json = [request_bytes(host, "/bulk_predict", json.dumps(rows).encode(), "application/json")]
    bulk_csv = [request_bytes(host, "/bulk_predict", pd.DataFrame(rows).to_csv(index=False).encode(), "text/csv")]

    await run_phase("warm-up", host, port, single, 500, args.concurrency)
    await run_phase("warm-up", host, port, bulk_json, 2, 1, args.bulk_rows)
    results = [await run_phase("/predict", host, port, single, args.requests, args.concurrency)]
    results.append(
        await run_phase(
            f"/bulk_predict JSON {args.bulk_rows // 1000}k rows",
            host,
            port,
            bulk_json,
            args.bulk_requests,
            args.bulk_concurrency,
            args.bulk_rows,
        )
    )
    results.append(
        await run_phase(
            f"/bulk_predict CSV {args.bulk_rows // 1000}k rows",
            host,
            port,
            bulk_csv,
            max(1, args.bulk_requests // 2),
            args.bulk_concurrency,
            args.bulk_rows,
        )
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start `ecom-assets serve` on a free port)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bulk-rows", type=int, default=10_000)
    parser.add_argument("--bulk-requests", type=int, default=20)
    parser.add_argument("--bulk-concurrency", type=int, default=2)
    args = parser.parse_args()

    process = log = None
    url = args.url
    if url is None:
        log = Path(tempfile.mkdtemp(prefix="bench_api_")) / "server.log"
        process, url = start_server(log)
    try:
        health = wait_ready(url, process, log)
        version = health["models"].get("cart_abandonment_gb", {}).get("version")
        if version is None:
            print(
                f"no production cart-abandonment model behind {url}: run `make demo` first "
                "(or set MLFLOW_TRACKING_URI to a registry that has one)",
                file=sys.stderr,
            )
            return 2
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        load = os.getloadavg()
        print(
            f"server {url}, cart model v{version}; {platform.python_version()}, {os.cpu_count()} CPU(s), "
            f"load average before {load[0]:.2f}"
        )
        results = asyncio.run(main_async(args, url))
        for result in results:
            print(result.line())
        predict, bulk = results[0], results[1:]
        p99 = float(np.percentile(np.array(predict.latencies) * 1e3, 99))
        best_bulk = max(r.requests * r.rows_per_request / r.seconds for r in bulk)
        server_errors = sum(r.server_errors for r in results)
        print(
            f"targets: /predict p99 {p99:.2f} ms (< {TARGET_P99_MS:g}) {'met' if p99 < TARGET_P99_MS else 'MISSED'}; "
            f"bulk {best_bulk:,.0f} rows/s (> {TARGET_ROWS_PER_S:,}) "
            f"{'met' if best_bulk > TARGET_ROWS_PER_S else 'MISSED'}; 5xx {server_errors} "
            f"{'met' if server_errors == 0 else 'MISSED'}; load average after {os.getloadavg()[0]:.2f}"
        )
        return 1 if server_errors else 0
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
