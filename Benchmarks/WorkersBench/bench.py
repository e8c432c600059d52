"""Workers benchmark: tgsm run vs Celery 5 + Redis + Telethon, side by side in one run.

Everything runs against one `tgsm testdc` (started here, with a world of ACCOUNTS bench accounts on
DC 1) and, for Celery, one redis-server started here on a free loopback port. Each job is one real
RPC: the `me` kind (users.getFullUser on inputUserSelf) or, with KIND=resolve, `resolve`
(contacts.resolveUsername). Both sides run the same number of jobs, with the same concurrency per
account, for the same accounts (each side logs in with keys of its own, as two devices would: one
key used by two clients at once is AUTH_KEY_DUPLICATED).

Measured, REPS times each, the two sides alternating:
  (a) jobs/s: JOBS jobs enqueued before the workers start, then the workers drain them. The rate is
      (completed - 1) / (last finish - first finish), from each job's own finish time (tgsm: the
      queue's finished_at; Celery: the task's time.time() in its result), so neither the start-up
      nor the harness's polling is in it. The wall time from starting the workers to the last job
      (start-up and login included) is shown too. 5,000 jobs by default: tgsm drains 1,000 in about
      a third of a second, where its first round trips and one stall of the shared machine weigh
      more than the steady state being measured (1,000 gave 2,585-3,379 jobs/s in one run of three,
      40,000 gave 3,754-4,674; Celery's rate does not depend on the count).
  (b) time to ready: from spawning the worker processes to ready (tgsm: its line `tgsm run: ready: …`,
      printed once every account's session checked out and the workers serve the queue; Celery: every
      worker's "ready." line, after its Telethon client connected) with an
      empty queue, and the resident memory of the idle workers then and after the jobs.
  (c) `tgsm status` cold start (wall time and peak RSS of the process) vs `python -c "import telethon"`.

usage: bench.py path/to/tgsm   (scripts/bench-workers builds tgsm in release and runs this)
knobs (environment): ACCOUNTS=2 CONCURRENCY=4 JOBS=5000 REPS=3 KIND=me STATUS_RUNS=30 IDLE_SECONDS=10
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TGSM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else ".build/release/tgsm"
PYTHON = sys.executable
ACCOUNTS = int(os.environ.get("ACCOUNTS", "2"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "4"))
JOBS = int(os.environ.get("JOBS", "5000"))
REPS = int(os.environ.get("REPS", "3"))
KIND = os.environ.get("KIND", "me")
STATUS_RUNS = int(os.environ.get("STATUS_RUNS", "30"))
# Seconds idle before resident memory is read (after ready, and after the last job), both sides:
# long enough for what the idle loop runs (timers, heartbeats, the HTTP date cache) to be resident
# again after tgsm run gives back its start-up pages (a 2-minute trace settles within 10 s).
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "10"))
API_ID, API_HASH = 1, "0123456789abcdef0123456789abcdef"
NAMES = [f"bench{i + 1}" for i in range(ACCOUNTS)]
PHONES = {name: f"1555020{i + 1:02d}" for i, name in enumerate(NAMES)}
RESOLVE_TARGET = "benchnews"

if KIND not in ("me", "resolve"):
    sys.exit("KIND must be me or resolve")


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid):
    """Resident memory of a process and its descendants (KiB), from /proc."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as file:
                for line in file:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as file:
                pids += [int(child) for child in file.read().split()]
        except FileNotFoundError:
            pass
    return total


class Reader:
    """Drains a child's output on a thread (a full pipe would block it) and waits for a line."""

    def __init__(self, stream):
        self.lines = []
        self.condition = threading.Condition()
        thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        thread.start()

    def _run(self, stream):
        for raw in stream:
            line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            with self.condition:
                self.lines.append((time.monotonic(), line))
                self.condition.notify_all()
        with self.condition:
            self.lines.append((time.monotonic(), None))
            self.condition.notify_all()

    def wait_for(self, predicate, timeout):
        """The time the first line matching `predicate` arrived, or None (timeout or end of output)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.condition:
            while True:
                while seen < len(self.lines):
                    at, line = self.lines[seen]
                    seen += 1
                    if line is None:
                        return None
                    if predicate(line):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.condition.wait(left)

    def text(self):
        with self.condition:
            return "".join(line for _, line in self.lines if line)


def stop(process, timeout=20):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stats(values):
    """median, min, max"""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


# MARK: - The test DC and the logins


def write_world(path):
    users = [{"id": 5001 + i, "phone": PHONES[name], "firstName": f"Bench {i + 1}", "username": name}
             for i, name in enumerate(NAMES)]
    channels = [{"id": 7001, "title": "Bench News", "username": RESOLVE_TARGET, "broadcast": True, "creatorID": 5001,
                 "messages": [{"id": 1, "date": 1700000000, "text": "bench"}]}]
    with open(path, "w") as file:
        json.dump({"users": users, "channels": channels}, file)


def start_testdc(state_dir, world):
    process = subprocess.Popen(
        [TGSM, "testdc", "--host", "127.0.0.1", "--base-port", "0", "--dcs", "1", "--state-dir", state_dir,
         "--world", world, "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = Reader(process.stdout)
    if reader.wait_for(lambda line: line.strip() == "ready", 120) is None:
        stop(process)
        raise RuntimeError("tgsm testdc did not become ready:\n" + reader.text())
    process.reader = reader
    with open(os.path.join(state_dir, "dcs.json")) as file:
        return process, json.load(file)


def control(table, path):
    with urllib.request.urlopen(table["control"]["url"] + path, timeout=10) as response:
        return json.loads(response.read())


async def telethon_login(table, state_dir, name):
    """A code login with Telethon (code from the control endpoint): the string session."""
    from telethon import TelegramClient
    from telethon.sessions import StringSession
    dc = table["dcs"][0]
    session = StringSession()
    session.set_dc(dc["id"], dc["host"], dc["port"])
    client = TelegramClient(session, API_ID, API_HASH, flood_sleep_threshold=0, receive_updates=False)
    await client.connect()
    try:
        sent = await client.send_code_request("+" + PHONES[name])
        code = control(table, f"/codes/{PHONES[name]}")["code"]
        await client.sign_in("+" + PHONES[name], code, phone_code_hash=sent.phone_code_hash)
        return client.session.save()
    finally:
        await client.disconnect()


def trust_test_dc(table, state_dir):
    from telethon.crypto import rsa
    rsa._server_keys.clear()
    for dc in table["dcs"]:
        with open(os.path.join(state_dir, dc["publicKeyFile"])) as pem:
            rsa.add_key(pem.read(), old=False)


# MARK: - Celery


class Celery:
    def __init__(self, work, table, state_dir, sessions):
        self.work = work
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", work],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.redis_reader = Reader(self.redis.stdout)
        if self.redis_reader.wait_for(lambda line: "Ready to accept connections" in line, 30) is None:
            stop(self.redis)
            raise RuntimeError("redis-server did not start:\n" + self.redis_reader.text())
        os.environ["BENCH_BROKER"] = self.url
        self.environment = dict(os.environ, BENCH_BROKER=self.url, BENCH_DC_DIR=state_dir, BENCH_SESSIONS=sessions,
                                PYTHONPATH=HERE)
        import redis
        from celery import Celery as App
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        # The producer has no result backend: with one, Celery's client subscribes to every task's
        # result channel at send time (~70 sends/s here). The workers still store every result.
        self.producer = App("workersbench", broker=self.url)
        self.producer.conf.update(task_serializer="json", accept_content=["json"])

    def version(self):
        import celery
        return celery.__version__

    def start_workers(self):
        """One worker per account; returns (processes, seconds until every one is ready)."""
        started = time.monotonic()
        workers = []
        for name in NAMES:
            process = subprocess.Popen(
                [PYTHON, "-m", "celery", "-A", "celery_app", "worker", "-Q", f"acct.{name}", "-n", f"{name}@bench",
                 "-P", "threads", "-c", str(CONCURRENCY), "-l", "info", "--without-mingle", "--without-gossip"],
                cwd=HERE, env=dict(self.environment, BENCH_ACCOUNT=name),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            process.reader = Reader(process.stdout)
            workers.append(process)
        ready = 0.0
        for process in workers:
            at = process.reader.wait_for(lambda line: line.rstrip().endswith(" ready."), 120)
            if at is None:
                for other in workers:
                    stop(other)
                raise RuntimeError("a Celery worker did not become ready:\n" + process.reader.text()[-4000:])
            ready = max(ready, at - started)
        return workers, ready

    def idle(self):
        workers, ready = self.start_workers()
        time.sleep(IDLE_SECONDS)
        memory = [rss_kib(process.pid) for process in workers]
        for process in workers:
            stop(process)
        return ready, memory

    def run_jobs(self):
        self.client.flushdb()
        began = time.monotonic()
        with self.producer.producer_or_acquire() as producer:
            for index in range(JOBS):
                name = NAMES[index % len(NAMES)]
                args = [name] if KIND == "me" else [name, RESOLVE_TARGET]
                self.producer.send_task(f"bench.{KIND}", args=args, queue=f"acct.{name}", producer=producer)
        enqueue_seconds = time.monotonic() - began
        start = time.monotonic()
        workers, ready = self.start_workers()
        deadline = time.monotonic() + 600
        while len(self.client.keys("celery-task-meta-*")) < JOBS:
            if time.monotonic() > deadline:
                raise RuntimeError("Celery did not finish the jobs within 600 s")
            time.sleep(0.2)
        wall = time.monotonic() - start
        time.sleep(IDLE_SECONDS)
        memory = [rss_kib(process.pid) for process in workers]
        for process in workers:
            stop(process)
        metas = [json.loads(raw) for raw in self.client.mget(self.client.keys("celery-task-meta-*"))]
        failed = [meta for meta in metas if meta.get("status") != "SUCCESS"]
        if failed:
            raise RuntimeError(f"{len(failed)} Celery jobs failed, e.g. {failed[0]}")
        finishes = sorted(meta["result"]["finishedAt"] for meta in metas)
        return {"rate": (len(finishes) - 1) / (finishes[-1] - finishes[0]), "wall": wall, "ready": ready,
                "enqueue": JOBS / enqueue_seconds, "rss": memory}

    def close(self):
        stop(self.redis)


# MARK: - tgsm


class Tgsm:
    def __init__(self, work, table, state_dir):
        self.store = os.path.join(work, "store")
        self.table = table
        self.state_dir = state_dir

    def environment(self):
        return dict(os.environ, TGSM_HOME=self.store)

    def import_session(self, name, string):
        result = subprocess.run([TGSM, "session", "import", "--account", name, "--store", self.store, "-"],
                                input=string.encode(), capture_output=True, env=self.environment())
        if result.returncode != 0:
            raise RuntimeError(f"tgsm session import failed ({result.returncode}): {result.stderr.decode()}")

    def status_command(self):
        return [TGSM, "status", "--store", self.store]

    def available(self):
        """Whether this tgsm has `run` (the runtime); without it only the status part is measured."""
        # An unknown subcommand's --help prints the root help with status 0: look for run's usage.
        result = subprocess.run([TGSM, "run", "--help"], capture_output=True, text=True)
        return "USAGE: tgsm run" in result.stdout

    def payload(self):
        return "{}" if KIND == "me" else json.dumps({"username": RESOLVE_TARGET})

    def enqueue(self):
        """JOBS jobs, round robin over the accounts; the jobs/s of the enqueue (not part of the rate).

        The first goes through `tgsm jobs enqueue`, which creates the queue file and its schema; the
        rest are inserted in one transaction with the very statement SQLiteJobQueue.enqueue runs (a
        process per job would measure process start-up, and Celery's side enqueues from one
        client too). The workers are not running, so nothing needs waking."""
        import sqlite3
        began = time.monotonic()
        first = subprocess.run([TGSM, "jobs", "enqueue", "--store", self.store, "--kind", KIND, "--account", NAMES[0],
                                "--payload", self.payload()], capture_output=True, env=self.environment())
        if first.returncode != 0:
            raise RuntimeError(f"tgsm jobs enqueue failed ({first.returncode}): {first.stderr.decode()}")
        database = sqlite3.connect(os.path.join(self.store, "jobs.sqlite"), timeout=30)
        with database:
            now = time.time()
            database.executemany(
                "INSERT INTO jobs (kind, account, payload, priority, state, run_at, max_attempts, idempotency_key, "
                "created_at, updated_at) VALUES (?, ?, ?, 0, 'queued', ?, 5, NULL, ?, ?)",
                [(KIND, NAMES[index % len(NAMES)], self.payload().encode(), now, now, now) for index in range(1, JOBS)])
        database.close()
        return JOBS / (time.monotonic() - began)

    def counts(self):
        import sqlite3
        database = sqlite3.connect(f"file:{os.path.join(self.store, 'jobs.sqlite')}?mode=ro", uri=True, timeout=30)
        try:
            return dict(database.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        finally:
            database.close()

    def finishes(self, since):
        import sqlite3
        database = sqlite3.connect(f"file:{os.path.join(self.store, 'jobs.sqlite')}?mode=ro", uri=True, timeout=30)
        try:
            return sorted(row[0] for row in database.execute(
                "SELECT finished_at FROM jobs WHERE state = 'completed' AND finished_at >= ?", (since,)))
        finally:
            database.close()

    def write_config(self):
        """The proactive rate gate raised for the benchmark (`rateLimits` in the store's config.json):
        by default tgsm holds an account to 5 calls a second of this kind, which is the point in
        production but would measure the gate here; Celery + Telethon have no gate at all."""
        os.makedirs(self.store, exist_ok=True)
        with open(os.path.join(self.store, "config.json"), "w") as config:
            json.dump({"rateLimits": {"perAccount": {"other": {"perSecond": 100000, "burst": 100000},
                                                     "resolve": {"perSecond": 100000, "burst": 100000}}}}, config)

    def start(self):
        """`tgsm run` on the test DC; returns (process, seconds until it printed `tgsm run: ready: …`,
        which it does once every account's runtime started and the workers serve the queue)."""
        self.write_config()
        started = time.monotonic()
        process = subprocess.Popen(
            [TGSM, "run", "--store", self.store, "--server", self.state_dir, "--concurrency", str(CONCURRENCY), "--http-port", "0",
             *[arg for name in NAMES for arg in ("--account", name)]],
            env=dict(self.environment(), TGSM_API_ID=str(API_ID), TGSM_API_HASH=API_HASH),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        process.reader = Reader(process.stdout)
        at = process.reader.wait_for(lambda line: line.startswith("tgsm run: ready"), 120)
        if at is None:
            stop(process)
            raise RuntimeError("tgsm run did not become ready:\n" + process.reader.text()[-4000:])
        return process, at - started

    def idle(self):
        process, ready = self.start()
        time.sleep(IDLE_SECONDS)
        memory = rss_kib(process.pid)
        stop(process)
        return ready, [memory]

    def run_jobs(self):
        since = time.time()
        enqueue = self.enqueue()
        start = time.monotonic()
        process, ready = self.start()
        deadline = time.monotonic() + 600
        while True:
            counts = self.counts()
            if counts.get("queued", 0) == 0 and counts.get("running", 0) == 0:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError(f"tgsm run did not finish the jobs ({counts}):\n" + process.reader.text()[-4000:])
            time.sleep(0.2)
        wall = time.monotonic() - start
        time.sleep(IDLE_SECONDS)
        memory = rss_kib(process.pid)
        stop(process)
        counts = self.counts()
        if counts.get("dead", 0):
            raise RuntimeError(f"{counts['dead']} tgsm jobs ended dead; see `tgsm jobs list --state dead --store {self.store}`")
        finishes = self.finishes(since)
        if len(finishes) != JOBS:
            raise RuntimeError(f"{len(finishes)} of {JOBS} tgsm jobs completed")
        return {"rate": (len(finishes) - 1) / (finishes[-1] - finishes[0]), "wall": wall, "ready": ready,
                "enqueue": enqueue, "rss": [memory]}


# MARK: - Cold start


def cold_start(command, env=None):
    """Wall time (s) and peak RSS (KiB) of one run of `command`.

    The peak comes from GNU time, not from this process's wait4: Linux carries a process's peak RSS
    across fork and exec, so a child forked from this (50 MiB) Python would report at least that.
    """
    with tempfile.NamedTemporaryFile("r") as peak:
        started = time.monotonic()
        code = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *command],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env).returncode
        seconds = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {code}")
        return seconds, int(peak.read().split()[-1])


# MARK: - Report


def ms(value):
    return f"{value * 1000:.1f}"


def mib(kib):
    return f"{kib / 1024:.1f}"


def row(label, ours, theirs, unit, fmt, better_lower, goal=""):
    """One line: medians with their spread (min-max) and the ratio in tgsm's favour."""
    def cell(triple):
        if triple is None:
            return "n/a"
        median, low, high = triple
        return f"{fmt(median)} ({fmt(low)}-{fmt(high)})"
    ratio = "n/a"
    if ours is not None and theirs is not None and ours[0] > 0 and theirs[0] > 0:
        ratio = f"{(theirs[0] / ours[0]) if better_lower else (ours[0] / theirs[0]):.2f}x"
    print(f"{label:<38} {unit:<5} {cell(ours):>24} {cell(theirs):>24} {ratio:>8}  {goal}")


def main():
    work = tempfile.mkdtemp(prefix="workersbench-")
    state_dir = os.path.join(work, "dc")
    sessions = os.path.join(work, "sessions")
    os.makedirs(sessions, mode=0o700)
    world = os.path.join(work, "world.json")
    write_world(world)
    load_before = loadavg()
    log(f"load {load_before}; starting tgsm testdc ({TGSM})")
    testdc, table = start_testdc(state_dir, world)
    celery = None
    try:
        trust_test_dc(table, state_dir)
        tgsm = Tgsm(work, table, state_dir)
        import asyncio
        for name in NAMES:
            string = asyncio.run(telethon_login(table, state_dir, name))
            path = os.path.join(sessions, name + ".telethon")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
                file.write(string)
            tgsm.import_session(name, asyncio.run(telethon_login(table, state_dir, name)))
        log(f"{len(NAMES)} accounts logged in twice (Celery's Telethon sessions, tgsm's store)")

        celery = Celery(work, table, state_dir, sessions)
        has_run = tgsm.available()
        if not has_run:
            log("this tgsm has no `run` command: measuring the Celery side and the status part only")
        sides = {"celery": celery, "tgsm": tgsm} if has_run else {"celery": celery}
        results = {side: {"ready": [], "rss_ready": [], "runs": []} for side in sides}
        for rep in range(REPS):
            for side, runner in sides.items():
                ready, memory = runner.idle()
                results[side]["ready"].append(ready)
                results[side]["rss_ready"].append(memory)
                run = runner.run_jobs()
                results[side]["runs"].append(run)
                log(f"rep {rep + 1}/{REPS} {side}: ready {ready:.2f} s, {run['rate']:.0f} jobs/s, "
                    f"start to last job {run['wall']:.2f} s, enqueue {run['enqueue']:.0f}/s, idle RSS {mib(sum(memory))} MiB")

        # (d) cold start, interleaved so both see the same load; the store now has its queue.
        status_runs, import_runs = [], []
        for _ in range(STATUS_RUNS):
            status_runs.append(cold_start(tgsm.status_command(), env=tgsm.environment()))
            import_runs.append(cold_start([PYTHON, "-c", "import telethon"]))
        load_after = loadavg()
    finally:
        if celery is not None:
            celery.close()
        stop(testdc)

    # MARK: report
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print()
    print(f"WorkersBench: {JOBS} `{KIND}` jobs per rep, {ACCOUNTS} accounts, concurrency {CONCURRENCY} per account, "
          f"{REPS} reps, {TGSM}; test DC (1 DC) and redis-server {redis_version.removeprefix('v=')} on loopback; "
          f"Celery {celery.version()} (threads pool, one worker per account, --without-mingle --without-gossip)")
    print(f"machine: {os.cpu_count()} cores, load average before {load_before}, after {load_after}")
    print(f"{'':<38} {'unit':<5} {'tgsm median (min-max)':>24} {'Celery median (min-max)':>24} {'ratio':>8}  goal")
    ours = results.get("tgsm")
    theirs = results["celery"]

    def pick(side, extract):
        return stats(extract(side)) if side is not None else None

    def both(label, unit, fmt, lower, extract, goal=""):
        row(label, pick(ours, extract), pick(theirs, extract), unit, fmt, lower, goal)

    rate = lambda v: f"{v:.0f}"
    seconds = lambda v: f"{v:.2f}"
    both("jobs/s (drain rate)", "1/s", rate, False, lambda r: [run["rate"] for run in r["runs"]], ">= 5x Celery")
    both("start to last job (wall)", "s", seconds, True, lambda r: [run["wall"] for run in r["runs"]])
    both("time to ready (empty queue)", "s", seconds, True, lambda r: r["ready"])
    both("idle RSS, all workers, at ready", "MiB", mib, True, lambda r: [sum(m) for m in r["rss_ready"]], "tgsm run < 30 MiB")
    both("idle RSS per worker process", "MiB", mib, True, lambda r: [kib for m in r["rss_ready"] for kib in m])
    both("idle RSS, all workers, after jobs", "MiB", mib, True, lambda r: [sum(run["rss"]) for run in r["runs"]])
    both("enqueue (not in the rate)", "1/s", rate, False, lambda r: [run["enqueue"] for run in r["runs"]])
    row("status vs `import telethon`: wall", stats([s for s, _ in status_runs]), stats([s for s, _ in import_runs]), "ms",
        ms, True, "tgsm status < 50 ms")
    row("status vs `import telethon`: peak RSS", stats([k for _, k in status_runs]), stats([k for _, k in import_runs]), "MiB",
        mib, True)
    print("ratio: tgsm's advantage (>1 is better for tgsm): Celery/tgsm for times and memory, tgsm/Celery for rates")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
