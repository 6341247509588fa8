"""Load test of the generation API: concurrent clients POST /generate on loopback for a while.

    python scripts/load_test_api.py --ckpt runs/dcgan/digits/checkpoints/last.ckpt [--clients 20] [--duration 10] [--n 16]
    python scripts/load_test_api.py --url http://127.0.0.1:8000 ...     # a server that is already running

With ``--ckpt`` it starts ``genmodels serve --api [--threads T]`` on a free loopback port (a child
process, as users run it) and stops it at the end. It measures one client first (the baseline, in the same
invocation), then ``--clients`` concurrent clients, each sending requests back to back with its
own seeds; a request counts as an error unless it returns 200 with a PNG. Prints a table (requests,
errors, requests/s, latency p50/p90/p99/max) and the concurrent/baseline ratios. Exit status 1 if
any request failed.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import httpx


@dataclass
class LoadStats:
    """Latencies (seconds) of successful requests and the failures, over ``seconds`` of wall time."""

    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile latency (nearest rank), in seconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt: str, port: int, device: str = "cpu", threads: Optional[int] = None) -> subprocess.Popen:
    """``genmodels serve --api`` on 127.0.0.1:``port`` (warnings only in its log)."""
    command = [sys.executable, "-m", "genmodels", "serve", "--api", "--ckpt", ckpt, "--port", str(port),
               "--device", device, "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(command + ([] if threads is None else ["--threads", str(threads)]))


def wait_healthy(url: str, timeout: float = 120.0, server: Optional[subprocess.Popen] = None) -> dict:
    """Poll ``/health`` until it answers; fail early if the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode} before answering")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.25)
    raise TimeoutError(f"{url}/health did not answer within {timeout:.0f} s")


def _client(url: str, index: int, ready: threading.Barrier, clock: dict, n: int, stats: LoadStats, lock: threading.Lock) -> None:
    # The connection pool (and its SSL context) is built before the clock starts: under load
    # that setup alone can take longer than a short run.
    with httpx.Client(base_url=url, timeout=60) as client:
        ready.wait()
        seed = index * 1_000_000
        while time.monotonic() < clock["deadline"]:
            started = time.perf_counter()
            try:
                response = client.post("/generate", json={"n": n, "seed": seed})
                ok = response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"
                failure = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as err:
                failure = f"{type(err).__name__}: {err}"
            elapsed = time.perf_counter() - started
            with lock:
                (stats.errors.append(failure) if failure else stats.latencies.append(elapsed))
            seed += 1


def run_load(url: str, clients: int = 20, duration: float = 10.0, n: int = 16) -> LoadStats:
    """``clients`` threads, each with its own connection, POST /generate back to back for ``duration`` s.

    The clock starts when every client is ready, and a request in flight at the deadline is
    waited for, so each client sends at least one request.
    """
    stats, lock, clock = LoadStats(clients), threading.Lock(), {}

    def start_clock() -> None:  # run by the last thread to arrive, before any is released
        clock["started"] = time.monotonic()
        clock["deadline"] = clock["started"] + duration

    ready = threading.Barrier(clients, action=start_clock)
    threads = [threading.Thread(target=_client, args=(url, i, ready, clock, n, stats, lock)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.seconds = time.monotonic() - clock["started"]
    return stats


def format_table(rows: list[LoadStats]) -> str:
    header = f"{'clients':>7s} {'requests':>9s} {'errors':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}"
    lines = [header]
    for s in rows:
        worst = max(s.latencies) if s.latencies else float("nan")
        lines.append(
            f"{s.clients:7d} {s.requests:9d} {len(s.errors):7d} {s.rate:8.1f} {1e3 * s.percentile(50):8.1f} "
            f"{1e3 * s.percentile(90):8.1f} {1e3 * s.percentile(99):8.1f} {1e3 * worst:8.1f}"
        )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="start `genmodels serve --api` for this checkpoint")
    source.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of concurrent load (default 10)")
    p.add_argument("--baseline-duration", type=float, default=3.0, help="seconds of the single-client baseline (0: skip)")
    p.add_argument("--n", type=int, default=16, help="images per request (default 16)")
    p.add_argument("--device", default="cpu", help="device of a server started with --ckpt")
    p.add_argument("--threads", type=int, default=None, help="--threads of a server started with --ckpt")
    args = p.parse_args(argv)
    server = None
    url = args.url
    if args.ckpt:
        url = f"http://127.0.0.1:{free_port()}"
        server = start_server(args.ckpt, int(url.rsplit(":", 1)[1]), args.device, args.threads)
    try:
        health = wait_healthy(url, server=server)
        print(f"{url}: {health['model']} {tuple(health['image_shape'])}, n={args.n} images per request")
        run_load(url, 1, 1.0, args.n)  # warm-up: first-call allocations, connection setup
        rows = [run_load(url, 1, args.baseline_duration, args.n)] if args.baseline_duration > 0 else []
        rows.append(run_load(url, args.clients, args.duration, args.n))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(format_table(rows))
    if len(rows) == 2 and rows[0].latencies and rows[1].latencies:
        base, load = rows
        print(f"ratio {load.clients} clients / 1 client: req/s {load.rate / base.rate:.2f}, "
              f"p50 latency {load.percentile(50) / base.percentile(50):.1f}x (one generation at a time: "
              f"latency grows with the queue, throughput stays)")  # fmt: skip
    for error in sorted(set(rows[-1].errors))[:5]:
        print(f"error: {error}")
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
