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
      (start-up and login included) is shown too.
  (b) time to ready: from spawning the worker processes to ready (tgsm: every account ready in
      /health; Celery: every worker's "ready." line, after its Telethon client connected) with an
      empty queue, and the resident memory of the idle workers then and after the jobs.
  (c) `tgsm status` cold start (wall time and peak RSS of the process) vs `python -c "import telethon"`.

usage: bench.py path/to/tgsm   (scripts/bench-workers builds tgsm in release and runs this)
knobs (environment): ACCOUNTS=2 CONCURRENCY=4 JOBS=1000 REPS=3 KIND=me STATUS_RUNS=30
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
JOBS = int(os.environ.get("JOBS", "1000"))
REPS = int(os.environ.get("REPS", "3"))
KIND = os.environ.get("KIND", "me")
STATUS_RUNS = int(os.environ.get("STATUS_RUNS", "30"))
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
        import celery_app
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        self.app = celery_app.app
        self.app.conf.broker_url = self.url
        self.app.conf.result_backend = self.url
        self.tasks = {"me": celery_app.me, "resolve": celery_app.resolve}

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
        time.sleep(2)
        memory = [rss_kib(process.pid) for process in workers]
        for process in workers:
            stop(process)
        return ready, memory

    def run_jobs(self):
        self.client.flushdb()
        task = self.tasks[KIND]
        began = time.monotonic()
        for index in range(JOBS):
            name = NAMES[index % len(NAMES)]
            args = [name] if KIND == "me" else [name, RESOLVE_TARGET]
            task.apply_async(args=args, queue=f"acct.{name}")
        enqueue_seconds = time.monotonic() - began
        start = time.monotonic()
        workers, ready = self.start_workers()
        deadline = time.monotonic() + 600
        while len(self.client.keys("celery-task-meta-*")) < JOBS:
            if time.monotonic() > deadline:
                raise RuntimeError("Celery did not finish the jobs within 600 s")
            time.sleep(0.2)
        wall = time.monotonic() - start
        time.sleep(2)
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
        return subprocess.run([TGSM, "run", "--help"], capture_output=True).returncode == 0


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
    print(f"{label:<34} {unit:<6} {cell(ours):>24} {cell(theirs):>24} {ratio:>8}  {goal}")


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

        # (d) cold start, interleaved so both see the same load.
        status_runs, import_runs = [], []
        for _ in range(STATUS_RUNS):
            status_runs.append(cold_start(tgsm.status_command(), env=tgsm.environment()))
            import_runs.append(cold_start([PYTHON, "-c", "import telethon"]))
        log("cold starts measured")

        celery = Celery(work, table, state_dir, sessions)
        tgsm_ready = tgsm_rss_ready = None
        runs = {"celery": [], "tgsm": []}
        celery_ready, celery_rss_ready = [], []
        has_run = tgsm.available()
        if not has_run:
            log("this tgsm has no `run` command yet: measuring the Celery side and the status part only")
        for rep in range(REPS):
            ready, memory = celery.idle()
            celery_ready.append(ready)
            celery_rss_ready.append(memory)
            result = celery.run_jobs()
            runs["celery"].append(result)
            log(f"rep {rep + 1}/{REPS} celery: ready {ready:.2f} s, {result['rate']:.0f} jobs/s, "
                f"wall {result['wall']:.2f} s, enqueue {result['enqueue']:.0f}/s")
        load_after = loadavg()
    finally:
        if celery is not None:
            celery.close()
        stop(testdc)

    # MARK: report
    print()
    print(f"WorkersBench: {JOBS} `{KIND}` jobs per rep, {ACCOUNTS} accounts, concurrency {CONCURRENCY} per account, "
          f"{REPS} reps; test DC (1 DC) and redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]} on loopback; "
          f"Celery {celery.version()} (threads pool, one worker per account, --without-mingle --without-gossip)")
    print(f"machine: {os.cpu_count()} cores, load average before {load_before}, after {load_after}")
    print(f"{'':<34} {'unit':<6} {'tgsm median (min-max)':>24} {'peer median (min-max)':>24} {'ratio':>8}  goal")
    celery_rates = stats([run["rate"] for run in runs["celery"]])
    row("jobs/s (drain rate)", None, celery_rates, "1/s", lambda v: f"{v:.0f}", False, ">= 5x Celery")
    row("start to last job (wall)", None, stats([run["wall"] for run in runs["celery"]]), "s", lambda v: f"{v:.2f}", True)
    row("time to ready (empty queue)", None, stats(celery_ready), "s", lambda v: f"{v:.2f}", True)
    row("idle RSS, all workers, at ready", None, stats([sum(m) for m in celery_rss_ready]), "MiB", mib, True)
    row("idle RSS per worker process", None, stats([kib for m in celery_rss_ready for kib in m]), "MiB", mib, True,
        "tgsm run < 30 MiB")
    row("idle RSS, all workers, after jobs", None, stats([sum(run["rss"]) for run in runs["celery"]]), "MiB", mib, True)
    row("enqueue rate (client)", None, stats([run["enqueue"] for run in runs["celery"]]), "1/s", lambda v: f"{v:.0f}", False)
    row("status vs `import telethon`: wall", stats([s for s, _ in status_runs]), stats([s for s, _ in import_runs]), "ms",
        ms, True, "tgsm status < 50 ms")
    row("status vs `import telethon`: RSS", stats([k for _, k in status_runs]), stats([k for _, k in import_runs]), "MiB",
        mib, True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
