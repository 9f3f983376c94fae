"""Ingest benchmark: SMTP acceptance rate and end-to-end latency (end of DATA → webhook received).

Starts its own ``mailkite serve`` (SQLite, then PostgreSQL), an HTTP receiver in its own process,
and sends realistic 5–50 KB messages (about a third with attachments) over K concurrent SMTP
sessions. Two phases per database:

1. throughput: N messages as fast as the K sessions go → accepted messages/s, and delivered
   messages/s (until the last of their webhooks is received: whether delivery keeps up);
2. latency: a paced load (default 100 messages/s for 10 s) → p50/p95/p99 from the moment the
   client starts sending the message's content (after DATA's 354) until the webhook reaches the
   receiver;

and, during phase 1, the NOOP round trip of one more session (CPU-heavy ingest work must not stall
the SMTP event loop for other sessions) and the CPU time per accepted message of each mailkite
process role (from /proc: steadier than the rates on a shared machine, and it says where to look),
what creating a file in the instance's data folder costs on this machine (see
:func:`file_creation_ms`: it moves from run to run, and the parse processes create two per message),
and how idle the cores were and how much the hypervisor took (steal) while sending: on a shared
machine the same code's rate moves with those.
The load generator (asyncio SMTP sessions, pipelining MAIL/RCPT/DATA) and the webhook receiver
(an asyncio HTTP/1.1 sink) are kept lean: they run on the same two cores as mailkite.

Prints figures; asserts nothing. Usage::

    .venv/bin/python bench/ingest.py [--messages 2000] [--sessions 20] [--rate 100] [--seconds 10]
                                     [--db sqlite,postgresql] [--workdir FOLDER]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.instance import MailkiteInstance  # noqa: E402
from tests.support.processes import descendants  # noqa: E402
from tests.support.servers import PostgresDatabase, RedisProcess, free_port, wait_for_port  # noqa: E402

WORDS = ("invoice order delivery account meeting schedule report update customer support request "
         "payment review project team weekly status question answer thanks please regards").split()


def make_message(rng: random.Random, tag: str) -> bytes:
    """A realistic message of 5–50 KB; about a third carry a 10–40 KB attachment."""
    m = EmailMessage()
    m["From"] = f"{rng.choice(['Ana', 'Ben', 'Chen', 'Dara'])} <sender{rng.randint(1, 50)}@sender.test>"
    m["To"] = "support@example.com"
    m["Subject"] = " ".join(rng.choice(WORDS) for _ in range(6))
    m["Message-ID"] = f"<{tag}@bench.test>"
    m["Date"] = "Sun, 22 Nov 2026 10:00:00 +0000"
    size = rng.randint(5_000, 50_000)
    attach = rng.random() < 0.33
    text_size = size // 3 if attach else size
    lines = []
    while sum(len(x) + 1 for x in lines) < text_size:
        lines.append(" ".join(rng.choice(WORDS) for _ in range(12)))
    m.set_content("\n".join(lines))
    if attach:
        m.add_attachment(os.urandom(max(1000, (size - text_size) * 3 // 4)), maintype="application",
                         subtype="pdf", filename="document.pdf")
    return m.as_bytes(policy=policy.SMTP)


def receiver_process(port: int, out_path: str, ready) -> None:
    """Records ``message_id<TAB>arrival time`` for every webhook, in its own process.

    A minimal HTTP/1.1 sink on asyncio streams (keep-alive, Content-Length bodies, 200 with no
    body): the receiver shares the machine's two cores with mailkite, so it should cost as little
    as a load generator can (http.server's threads cost ~0.5 ms of CPU per webhook here)."""
    import asyncio

    out = open(out_path, "a", buffering=1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                now = time.time()
                out.write(f"{json.loads(body)['data']['message_id']}\t{now}\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20)
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())


def wire_data(raw: bytes) -> bytes:
    """``raw`` as DATA puts it on the wire, as ``smtplib.SMTP.data`` does: dot-stuffed
    (RFC 5321 §4.5.2), ending in CRLF, then the ``.`` line."""
    data = re.sub(rb"(?m)^\.", b"..", raw)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


async def _reply(reader) -> tuple[int, bytes]:
    """One SMTP reply (RFC 5321 §4.2: the last line has a space after the code)."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3]), line


def send_all(port: int, messages: list[tuple[str, bytes]], sessions: int, rate: float | None,
             sent_at: dict[str, float], accepted_at: dict[str, float] | None = None) -> float:
    """Send over ``sessions`` connections; paced at ``rate``/s if given. Returns the wall time.

    One asyncio SMTP client per session, in this process (the load generator shares the two cores
    with mailkite; smtplib's threads cost ~0.7 ms of CPU per message here). Messages are
    dot-stuffed before the clock starts. ``sent_at[tag]``: when the client started sending the
    message's content (after the 354 reply to DATA); ``accepted_at[tag]``: when its 250 came."""
    import asyncio

    wire = [(tag, wire_data(raw)) for tag, raw in messages]

    async def session(queue: list[tuple[int, tuple[str, bytes]]], start: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        try:
            await _reply(reader)
            writer.write(b"EHLO bench.test\r\n")
            await _reply(reader)
            while queue:
                index, (tag, data) = queue.pop(0)
                if rate:
                    delay = start + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                # PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write, their replies read in order
                writer.write(b"MAIL FROM:<sender@sender.test>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n")
                replies = [(await _reply(reader))[0] for _ in range(3)]
                if replies != [250, 250, 354]:
                    raise RuntimeError(f"transaction refused: {replies}")
                t0 = time.time()
                writer.write(data)
                code, line = await _reply(reader)
                if code != 250:
                    raise RuntimeError(f"message refused: {line!r}")
                sent_at[tag] = t0
                if accepted_at is not None:
                    accepted_at[tag] = time.time()
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            writer.close()

    async def run() -> float:
        queue = list(enumerate(wire))
        start = time.perf_counter()
        await asyncio.gather(*(session(queue, start) for _ in range(sessions)))
        return time.perf_counter() - start

    return asyncio.run(run())


class NoopProbe:
    """A separate SMTP session sending NOOP every 20 ms: its round-trip times show whether ingest
    work (parsing, storing) ever stalls the MX event loop for other sessions."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as c:
            c.ehlo("probe.test")
            while not self._stop.is_set():
                t0 = time.perf_counter()
                c.noop()
                self.samples.append((time.perf_counter() - t0) * 1000)
                self._stop.wait(0.02)

    def __enter__(self) -> "NoopProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wait_received(path: Path, tags: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        got = {}
        for line in path.read_text().splitlines():
            mid, at = line.split("\t")
            got.setdefault(mid.strip("<>").split("@")[0], float(at))
        if tags <= set(got):
            break
        time.sleep(0.2)
    return got


def cpu_by_role(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by ``root`` and its descendants, by role: the
    ``mailkite`` sub-command, ``parse`` for the MX's parse processes, ``redis`` for redis-server."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in [root] + descendants(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        words = [a.decode(errors="replace") for a in argv if a]
        if "mailkite" in words:
            role = words[words.index("mailkite") + 1] if words.index("mailkite") + 1 < len(words) else "?"
        elif any("multiprocessing" in w for w in words):
            role = "parse" if not any("resource_tracker" in w for w in words) else "other"
        else:
            role = Path(words[0]).name if words else "?"
        out[role] = out.get(role, 0.0) + seconds
    return out


# Histograms read from the web role's /metrics: what an ingest waits for, by stage.
TIMED = {"mailkite_pipeline_stage_seconds": "stage", "mailkite_db_write_barrier_seconds": None,
         "mailkite_db_write_batch_seconds": None, "mailkite_db_write_batch_size": None}


def stage_seconds(web_port: int) -> dict[str, tuple[float, float]]:
    """name → (sum, count) of the :data:`TIMED` histograms (per ``stage`` label for the pipeline's)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10).read().decode()
    out: dict[str, list[float]] = {}
    for m in re.finditer(r'^(mailkite_\w+)_(sum|count)(?:\{stage="([^"]+)"\})? (\S+)$', text, re.M):
        if m[1] not in TIMED:
            continue
        name = m[3] or m[1].removeprefix("mailkite_db_write_").removesuffix("_seconds")
        out.setdefault(name, [0.0, 0.0])[0 if m[2] == "sum" else 1] = float(m[4])
    return {name: (s, c) for name, (s, c) in out.items()}


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, from /proc/stat's ``cpu`` line (clock ticks): user, nice,
    system, idle, iowait, irq, softirq, steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def file_creation_ms(folder: Path, count: int = 200) -> float:
    """CPU ms to create one file in ``folder`` (kept until the run's clean-up): the parse processes
    create two per message in the blob folder beside it. On this machine kind it was seen to vary
    from 0.02 to 0.9 ms from one folder to the next (ext4 inode allocation), which moves the
    parse processes' CPU per message by up to 2 ms between runs of the same code."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.process_time()
    for _ in range(count):
        fd, _name = tempfile.mkstemp(dir=folder)
        os.write(fd, b"x" * 4096)
        os.close(fd)
    return (time.process_time() - start) * 1000 / count


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(db_kind: str, args, workdir: Path) -> dict:
    redis = RedisProcess(workdir / "redis")
    redis.start()
    pg = None
    inst = MailkiteInstance(data_dir=workdir / f"var-{db_kind}", redis_url=redis.url,
                            extra_env={"MAILKITE_WORKER_PROCESSES": str(args.workers),
                                       "MAILKITE_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")})
    if db_kind == "postgresql":
        pg = PostgresDatabase()
        pg.create()
        inst.database_url = pg.url
    port = free_port()
    received = workdir / f"received-{db_kind}.tsv"
    received.write_text("")
    ready = multiprocessing.Event()
    recv = multiprocessing.Process(target=receiver_process, args=(port, str(received), ready), daemon=True)
    recv.start()
    ready.wait(10)
    wait_for_port(port)
    try:
        inst.add_domain("example.com")
        inst.add_webhook(f"http://127.0.0.1:{port}/hook")
        inst.start("serve")
        rng = random.Random(42)
        warm = [(tag, make_message(rng, tag)) for tag in (uuid.uuid4().hex for _ in range(20))]
        send_all(inst.mx_port, warm, 4, None, {})
        wait_received(received, {t for t, _ in warm}, 60)

        batch = [(tag, make_message(rng, tag)) for tag in (uuid.uuid4().hex for _ in range(args.messages))]
        total_bytes = sum(len(r) for _, r in batch)
        sent_at: dict[str, float] = {}
        serve_pid = inst.procs["serve"].pid
        cpu_before = cpu_by_role(serve_pid)
        client_before = os.times()
        recv_before = cpu_by_role(recv.pid)
        file_ms = file_creation_ms(inst.data_dir / "fs-probe")
        ticks_before = cpu_ticks()
        with NoopProbe(inst.mx_port) as probe:
            wall = send_all(inst.mx_port, batch, args.sessions, None, sent_at)
        ticks = [b - a for a, b in zip(ticks_before, cpu_ticks())]
        idle_pct = 100 * (ticks[3] + ticks[4]) / max(sum(ticks), 1)  # idle + iowait
        steal_pct = 100 * ticks[7] / max(sum(ticks), 1)
        delivered = wait_received(received, {t for t, _ in batch}, 300)
        delivered_rate = len(delivered) / (max(delivered.values()) - min(sent_at.values()))
        cpu_after = cpu_by_role(serve_pid)
        client_after = os.times()
        cpu_ms = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / len(batch) for role in cpu_after}
        cpu_ms["bench client"] = ((client_after.user - client_before.user) + (client_after.system - client_before.system)
                                  ) * 1000 / len(batch)
        recv_after = cpu_by_role(recv.pid)
        cpu_ms["bench receiver"] = (sum(recv_after.values()) - sum(recv_before.values())) * 1000 / len(batch)
        accepted_rate = len(sent_at) / wall

        paced = [(tag, make_message(rng, tag)) for tag in (uuid.uuid4().hex for _ in range(int(args.rate * args.seconds)))]
        paced_sent: dict[str, float] = {}
        paced_accepted: dict[str, float] = {}
        stages_before = stage_seconds(inst.web_port)
        paced_wall = send_all(inst.mx_port, paced, args.sessions, args.rate, paced_sent, paced_accepted)
        got = wait_received(received, {t for t, _ in paced}, 300)
        latencies = [(got[t] - paced_sent[t]) * 1000 for t, _ in paced if t in got]
        missing = len(paced) - len(latencies)
        to_250 = [(paced_accepted[t] - paced_sent[t]) * 1000 for t, _ in paced]
        stages = {stage: (s - stages_before.get(stage, (0.0, 0.0))[0]) * (1 if stage == "batch_size" else 1000)
                  / (c - stages_before.get(stage, (0.0, 0.0))[1])
                  for stage, (s, c) in stage_seconds(inst.web_port).items()
                  if c > stages_before.get(stage, (0.0, 0.0))[1]}
        return {
            "db": db_kind, "messages": len(batch), "avg_kb": total_bytes / len(batch) / 1024,
            "accepted_per_s": accepted_rate, "delivered_per_s": delivered_rate, "file_ms": file_ms,
            "idle_pct": idle_pct, "steal_pct": steal_pct,
            "offered_per_s": len(paced) / paced_wall,
            "p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99),
            "max": max(latencies), "mean": statistics.mean(latencies), "missing": missing,
            "to_250_p50": pct(to_250, 50), "to_250_p99": pct(to_250, 99), "stages": stages,
            "cpu_ms": cpu_ms,
            "noop_p50": pct(probe.samples, 50), "noop_p99": pct(probe.samples, 99), "noop_max": max(probe.samples),
        }
    finally:
        inst.stop_all()
        recv.terminate()
        redis.stop()
        if pg:
            pg.drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2, help="webhook worker processes")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--workdir", default=None,
                    help="folder for the instances' data (blobs, SQLite): put it on the file system your "
                         "MAILKITE_DATA_DIR would use (default: the system's temporary folder)")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mk-bench-", dir=args.workdir))
    results = []
    try:
        for kind in args.db.split(","):
            results.append(run(kind.strip(), args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmailkite ingest benchmark — {os.cpu_count()} cores, {args.sessions} SMTP sessions, "
          f"{args.workers} webhook workers")
    print(f"{'database':<11} {'msgs':>5} {'avg KB':>7} {'accepted/s':>11} | {'offered/s':>9} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lost':>5}")
    for r in results:
        print(f"{r['db']:<11} {r['messages']:>5} {r['avg_kb']:>7.1f} {r['accepted_per_s']:>11.1f} | "
              f"{r['offered_per_s']:>9.1f} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f} {r['max']:>7.1f} "
              f"{r['missing']:>5}")
    print("\nthroughput phase, end to end: every webhook received (from the first message sent to the last"
          " webhook received)")
    for r in results:
        print(f"{r['db']:<11} {r['delivered_per_s']:.1f} messages/s delivered; creating a file in the data folder "
              f"cost {r['file_ms']:.2f} ms CPU here (two per message); while sending, the cores were "
              f"{r['idle_pct']:.0f}% idle and the hypervisor took {r['steal_pct']:.1f}% (steal)")
    print("\nCPU per accepted message during the throughput phase (ms, user + system, by process role):")
    for r in results:
        parts = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(r["cpu_ms"].items(), key=lambda kv: -kv[1])
                          if ms >= 0.05)
        mailkite = sum(ms for role, ms in r["cpu_ms"].items() if not role.startswith("bench"))
        print(f"{r['db']:<11} mailkite {mailkite:.1f} ms/message ({parts})")
    print("\nof the paced latency, the part until the MX's 250 (content sent → 250 received):")
    for r in results:
        stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in r["stages"].items())
        print(f"{r['db']:<11} p50 {r['to_250_p50']:.1f} ms, p99 {r['to_250_p99']:.1f} ms; "
              f"means: {stages} (ms; the writer's barrier and batch, jobs per batch)")
    print("\nevent-loop responsiveness during the throughput phase (NOOP round trip on another session):")
    for r in results:
        print(f"{r['db']:<11} p50 {r['noop_p50']:.1f} ms, p99 {r['noop_p99']:.1f} ms, max {r['noop_max']:.1f} ms")


if __name__ == "__main__":
    main()
