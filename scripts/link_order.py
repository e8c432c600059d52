"""Helper of scripts/link-order: callgrind over `tgsm run` (start, idle, shutdown) -> function order file.

usage: link_order.py path/to/tgsm out.order   (IDLE_SECONDS=20)
"""
import asyncio
import bisect
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

TGSM = os.path.abspath(sys.argv[1])
OUT = sys.argv[2]
sys.argv = [sys.argv[0], TGSM]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Benchmarks", "WorkersBench"))
import bench  # noqa: E402  (the workers benchmark's test DC, login and store helpers)

IDLE = int(os.environ.get("IDLE_SECONDS", "20"))


def main():
    work = tempfile.mkdtemp(prefix="link-order-")
    state_dir, world = os.path.join(work, "dc"), os.path.join(work, "world.json")
    bench.write_world(world)
    testdc, table = bench.start_testdc(state_dir, world)
    try:
        bench.trust_test_dc(table, state_dir)
        tgsm = bench.Tgsm(work, table, state_dir)
        for name in bench.NAMES:
            tgsm.import_session(name, asyncio.run(bench.telethon_login(table, state_dir, name)))
        tgsm.write_config()
        # valgrind cannot read the DWARF of Swift binaries; the symbol table is all it needs.
        plain = os.path.join(work, "tgsm")
        subprocess.run(["objcopy", "--strip-debug", TGSM, plain], check=True)
        profile = os.path.join(work, "callgrind.out")
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", "--dump-line=no",
             "--dump-instr=yes", "--compress-strings=no", "--compress-pos=no",
             plain, "run", "--store", tgsm.store, "--server", state_dir, "--concurrency", str(bench.CONCURRENCY),
             "--http-port", "0", *[arg for name in bench.NAMES for arg in ("--account", name)]],
            env=dict(tgsm.environment(), TGSM_API_ID=str(bench.API_ID), TGSM_API_HASH=bench.API_HASH),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        process.reader = bench.Reader(process.stdout)
        if process.reader.wait_for(lambda line: line.startswith("tgsm run: ready"), 600) is None:
            bench.stop(process)
            sys.exit("tgsm run did not become ready under valgrind:\n" + process.reader.text()[-4000:])
        time.sleep(IDLE)
        bench.stop(process, timeout=120)
        # Executed instruction addresses, mapped to the symbols that contain them (by address, as
        # names can differ: valgrind picks one of several aliases of a merged function).
        addresses = set()
        lowest = {}  # function name -> lowest executed address: its entry, which places the binary
        current = function = None
        with open(profile, errors="replace") as file:
            for line in file:
                if line.startswith("ob="):
                    current = line[3:].strip()
                elif line.startswith("fn="):
                    function = line[3:].strip()
                elif current == plain and line.startswith("0x"):
                    address = int(line.split()[0], 16)
                    addresses.add(address)
                    lowest[function] = min(address, lowest.get(function, address))
        starts = {}
        listing = subprocess.run(["nm", "-n", "--defined-only", plain], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwW":
                starts.setdefault(int(parts[0], 16), []).append(parts[2])
        ordered = sorted(starts)
        # valgrind loads the position-independent binary at a base of its own: the most common
        # difference between a function's entry in the profile and in the symbol table.
        symbol = {name: address for address, names in starts.items() for name in names}
        shifts = collections.Counter(entry - symbol[name] for name, entry in lowest.items() if name in symbol)
        if not shifts:
            sys.exit("no function of the binary in the profile")
        shift = shifts.most_common(1)[0][0]
        executed = set()
        for address in (address - shift for address in addresses):
            index = bisect.bisect_right(ordered, address) - 1
            if index >= 0:
                executed.update(starts[ordered[index]])
        names = sorted(executed)
        with open(OUT, "w") as file:
            file.write("\n".join(names) + "\n")
        print(f"{OUT}: {len(names)} functions", file=sys.stderr)
    finally:
        bench.stop(testdc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
