"""Receiver throughput and latency: `diffwise serve --no-worker` (durable enqueue) against Probot 14 (in memory).

Run: `python -m benchmarks.receiver [--duration 10] [--rounds 2] [--no-probot] [--fsync] [--thread] [--paced 0.8]`.
Load comes from `wrk` (apt-get install wrk) with a Lua script giving every request a unique
X-GitHub-Delivery; without wrk a small asyncio generator is used instead (it saturates sooner, so the
figures are then a lower bound). Both servers get the same signed ~21 KB `pull_request.opened` delivery
(GitHub's example payload from tests/fixtures), the same connections and the same duration, one after the
other, round by round. Probot is installed with `npm install probot@14` into benchmarks/out/probot.
Prints a markdown section.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
FIXTURE = ROOT / "tests" / "fixtures" / "webhooks" / "pull_request.opened.json"
SECRET = "benchmark-secret"
HOOK = "/api/github/webhooks"

WRK_LUA = """
local counter = 0
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
function init(args)
  local f = io.open(args[1], "rb")
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["X-GitHub-Hook-ID"] = "1"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  wrk.headers["X-Hub-Signature-256"] = args[2]
  prefix = args[3]
end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", prefix, tid, counter)
  return wrk.format()
end
function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, '
    .. '"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""

PROBOT_SERVER = """
import { createServer } from "node:http";
import { Probot, createNodeMiddleware } from "probot";

let received = 0;
const appFn = (app) => {
  app.on("pull_request", async () => { received += 1; });  // trivial in-memory handler
};
const probot = new Probot({
  appId: 1,
  privateKey: process.env.PRIVATE_KEY,
  secret: process.env.WEBHOOK_SECRET,
  logLevel: "warn",
});
const middleware = await createNodeMiddleware(appFn, { probot, webhooksPath: "/api/github/webhooks" });
createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(200); res.end("ok"); return; }
  middleware(req, res, () => { res.writeHead(404); res.end(); });
}).listen(Number(process.env.PORT), "127.0.0.1");
"""


@dataclass(frozen=True)
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    requests: int
    bad: int


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload() -> bytes:
    return json.dumps(json.loads(FIXTURE.read_bytes()), separators=(",", ":")).encode()


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_diffwise(
    port: int,
    state_dir: Path,
    *,
    worker: bool,
    fsync: bool = False,
    app_key: str | None = None,
    group_commit: str = "auto",
) -> subprocess.Popen[bytes]:
    env = {
        "DIFFWISE_GROUP_COMMIT": group_commit,
        **os.environ,
        "WEBHOOK_SECRET": SECRET,
        "DIFFWISE_STATE_DIR": str(state_dir),
        "LOG_LEVEL": "warning",
        "DIFFWISE_FSYNC": "1" if fsync else "0",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "REDIS_URL", "GITHUB_API_URL", "GHE_HOST"):
        env.pop(name, None)
    if app_key is not None:  # an installed App: no setup page; GitHub on a dead loopback port, never the network
        env.update(APP_ID="1", PRIVATE_KEY=app_key, GITHUB_API_URL=f"http://127.0.0.1:{free_port()}")
    argv = [sys.executable, "-m", "app", "serve", "--port", str(port)] + ([] if worker else ["--no-worker"])
    proc = subprocess.Popen(argv, env=env, cwd=state_dir.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(port, proc)
    return proc


def ensure_probot() -> Path | None:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return None
    home = OUT / "probot"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "node_modules" / "probot").is_dir():
        (home / "package.json").write_text('{"name": "probot-bench", "private": true, "type": "module"}\n')
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "probot@14"],
            cwd=home,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (home / "server.mjs").write_text(PROBOT_SERVER)
    return home


def start_probot(home: Path, port: int) -> subprocess.Popen[bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env = {**os.environ, "PRIVATE_KEY": pem, "WEBHOOK_SECRET": SECRET, "PORT": str(port), "LOG_LEVEL": "warn"}
    node = shutil.which("node") or "node"
    proc = subprocess.Popen([node, "server.mjs"], cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_healthy(port, proc)
    return proc


def run_wrk(port: int, body_file: Path, sig: str, prefix: str, args: argparse.Namespace) -> dict[str, float]:
    pace_ms = getattr(args, "pace_ms", 0)
    script = OUT / ("receiver-paced.lua" if pace_ms else "receiver.lua")
    # Paced: each connection waits pace_ms between requests (wrk's delay() hook), so every server gets the
    # same offered load instead of as much as it can take, and latency is compared at equal work.
    script.write_text(WRK_LUA + (f"function delay()\n  return {pace_ms}\nend\n" if pace_ms else ""))
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration:g}s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{HOOK}",
        "--",
        str(body_file),
        sig,
        prefix,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run_python_load(port: int, body: bytes, sig: str, prefix: str, args: argparse.Namespace) -> dict[str, float]:
    """Fallback generator: keep-alive connections on raw asyncio streams."""
    latencies: list[float] = []
    bad = 0

    async def connection(n: int, deadline: float) -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            head = (
                f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {prefix}-{n}-{i}\r\n"
                f"X-Hub-Signature-256: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            bad += status >= 300
            if getattr(args, "pace_ms", 0):
                await asyncio.sleep(args.pace_ms / 1000)
        writer.close()

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + args.duration
        await asyncio.gather(*(connection(n, deadline) for n in range(args.connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6

    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "non2xx": bad,
        "errors": 0,
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "p999": pct(99.9),
        "max": latencies[-1] * 1e6,
    }


def measure(
    name: str, port: int, body: bytes, body_file: Path, args: argparse.Namespace, round_no: int
) -> tuple[Result, int]:
    sig, prefix = signature(body), f"{name.split()[0]}-{round_no}-{time.time_ns()}"
    load: Callable[..., dict[str, float]]
    if shutil.which("wrk"):

        def load(p: str, seconds: float) -> dict[str, float]:
            ns = argparse.Namespace(**{**vars(args), "duration": seconds})
            return run_wrk(port, body_file, sig, p, ns)
    else:

        def load(p: str, seconds: float) -> dict[str, float]:
            ns = argparse.Namespace(**{**vars(args), "duration": seconds})
            return run_python_load(port, body, sig, p, ns)

    warm = load(prefix + "w", 2)
    raw = load(prefix, args.duration)
    result = Result(
        name=name,
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50"] / 1000,
        p99_ms=raw["p99"] / 1000,
        p999_ms=raw["p999"] / 1000,
        requests=int(raw["requests"]),
        bad=int(raw["non2xx"] + raw["errors"]),
    )
    return result, int(warm["requests"] - warm["non2xx"] - warm["errors"])


def persisted(state_dir: Path) -> int:
    with sqlite3.connect(state_dir / "queue.db") as conn:
        return int(conn.execute("select count(*) from delivery").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-probot", action="store_true")
    parser.add_argument("--fsync", action="store_true", help="also measure DIFFWISE_FSYNC=1 (fsync per group commit)")
    parser.add_argument(
        "--thread", action="store_true", help="also measure DIFFWISE_GROUP_COMMIT=thread (commits off the event loop)"
    )
    parser.add_argument(
        "--paced",
        type=float,
        default=0.8,
        help="then run every server at this fraction of the slowest server's median throughput (0: skip)",
    )
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    body = payload()
    body_file = OUT / "pull_request.opened.min.json"
    body_file.write_bytes(body)
    probot_home = None if args.no_probot else ensure_probot()
    load_avg = os.getloadavg()
    results: dict[str, list[Result]] = {}
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="diffwise-bench-"))
    try:
        variants: list[tuple[str, bool, str]] = [("diffwise (SQLite, synchronous=NORMAL)", False, "auto")]
        if args.thread:
            variants.append(("diffwise (SQLite, commit thread)", False, "thread"))
        if args.fsync:
            variants.append(("diffwise (SQLite, fsync per commit)", True, "auto"))
        for round_no in range(args.rounds):
            for index, (name, fsync, mode) in enumerate(variants):
                state = work / f"state-{round_no}-{index}"
                port = free_port()
                proc = start_diffwise(port, state, worker=False, fsync=fsync, group_commit=mode)
                try:
                    result, warm_ok = measure(name, port, body, body_file, args, round_no)
                finally:
                    stop(proc)
                stored = persisted(state)
                ok = result.requests - result.bad + warm_ok
                if stored < ok:
                    notes.append(f"{name}: {ok} deliveries answered 2xx but only {stored} persisted")
                results.setdefault(name, []).append(result)
            if probot_home is not None:
                port = free_port()
                proc = start_probot(probot_home, port)
                try:
                    result, _ = measure("Probot 14 (in memory)", port, body, body_file, args, round_no)
                finally:
                    stop(proc)
                results.setdefault(result.name, []).append(result)

        paced: dict[str, list[Result]] = {}
        slowest = min((statistics.median(r.rps for r in rs) for rs in results.values()), default=0.0)
        if args.paced > 0 and slowest > 0:
            # The same pacing for every server: each connection waits pace_ms after an answer before its next
            # delivery, so no server is pushed to saturation and latencies compare at similar work.
            pace_ms = max(1, round(args.connections * 1000 / (slowest * args.paced)))
            paced_args = argparse.Namespace(**{**vars(args), "pace_ms": pace_ms})
            for round_no in range(args.rounds):
                for index, (name, fsync, mode) in enumerate(variants):
                    state = work / f"paced-{round_no}-{index}"
                    port = free_port()
                    proc = start_diffwise(port, state, worker=False, fsync=fsync, group_commit=mode)
                    try:
                        result, _ = measure(name, port, body, body_file, paced_args, 100 + round_no)
                    finally:
                        stop(proc)
                    paced.setdefault(result.name, []).append(result)
                if probot_home is not None:
                    port = free_port()
                    proc = start_probot(probot_home, port)
                    try:
                        result, _ = measure("Probot 14 (in memory)", port, body, body_file, paced_args, 100 + round_no)
                    finally:
                        stop(proc)
                    paced.setdefault(result.name, []).append(result)

        idle_state = work / "idle"
        port = free_port()
        proc = start_diffwise(port, idle_state, worker=True)
        time.sleep(2)
        idle_rss = rss_kib(proc.pid)
        stop(proc)
        from tests.fakes.github import generate_app_keys

        port = free_port()
        proc = start_diffwise(port, work / "idle-app", worker=True, app_key=generate_app_keys().private_pem)
        time.sleep(2)
        idle_app_rss = rss_kib(proc.pid)
        stop(proc)
        probot_rss = None
        if probot_home is not None:
            port = free_port()
            proc = start_probot(probot_home, port)
            time.sleep(2)
            probot_rss = rss_kib(proc.pid)
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {name: max(rs, key=lambda r: r.rps) for name, rs in results.items()}
    generator = "wrk" if shutil.which("wrk") else "asyncio fallback generator (lower bound)"
    print("## Receiver throughput\n")
    print(
        f"Signed `pull_request.opened` delivery of {len(body):,} bytes, {args.connections} connections, "
        f"{args.duration:g} s per run after a 2 s warm-up, {args.rounds} round(s), load from {generator}, "
        f"{os.cpu_count()} CPUs, load average before the runs {load_avg[0]:.2f}. "
        "Best round shown; every round listed below.\n"
    )
    print("| server | deliveries/s | p50 ms | p99 ms | p99.9 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in best.values():
        print(f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.p999_ms:.2f} | {r.bad} |")
    print()
    probot = best.get("Probot 14 (in memory)")
    for name, r in best.items():
        if probot is not None and r is not probot:
            ratio = r.rps / probot.rps
            print(f"- {name} / Probot throughput: **{ratio:.2f}x**; p99 {r.p99_ms:.1f} ms vs {probot.p99_ms:.1f} ms")
    if probot is None:
        print("- Probot not measured (npm or node missing, or --no-probot).")
    for name, rs in results.items():
        rounds = ", ".join(f"{r.rps:,.0f}/s p99 {r.p99_ms:.1f} ms" for r in rs)
        print(f"- rounds, {name}: {rounds} (median {statistics.median(r.rps for r in rs):,.0f}/s)")
    for name, rs in results.items():
        print(f"- median p99 over the rounds, {name}: {statistics.median(r.p99_ms for r in rs):.1f} ms")
    if paced:
        offered = args.connections * 1000 / paced_args.pace_ms
        print(
            f"\nPaced, the same for every server: each of {args.connections} connections waits "
            f"{paced_args.pace_ms} ms after an answer before its next delivery (under {offered:,.0f}/s, about "
            f"{args.paced:.0%} of the slowest median throughput at most), so none runs saturated:\n"
        )
        print("| server | deliveries/s | p50 ms | p99 ms (median of rounds) | p99 per round |")
        print("|---|---:|---:|---:|---|")
        for name, rs in paced.items():
            rounds = ", ".join(f"{r.p99_ms:.1f}" for r in rs)
            print(
                f"| {name} | {statistics.median(r.rps for r in rs):,.0f} | "
                f"{statistics.median(r.p50_ms for r in rs):.2f} | {statistics.median(r.p99_ms for r in rs):.2f} | "
                f"{rounds} |"
            )
        print()
    print(f"- RSS of `diffwise serve` (receiver + embedded worker) idle: {idle_rss / 1024:.1f} MiB")
    print(f"- the same with App credentials (no setup page; recovery armed): {idle_app_rss / 1024:.1f} MiB")
    if probot_rss is not None:
        print(f"- RSS of the Probot server idle: {probot_rss / 1024:.1f} MiB")
    for note in notes:
        print(f"- WARNING: {note}")
    if not notes:
        print("- every delivery answered 2xx by diffwise was found in its queue database afterwards")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
