#!/usr/bin/env python3
"""`logredact audit-summary` on a large audit file: peak memory per distinct
fingerprint, and time.

The audit file is generated here, record by record in the format logredact
writes (SPEC §5): N records, each with a fingerprint of its own (16 hex
digits, distinct by construction: the record's number times an odd constant,
modulo 2^64, so not random and never token-shaped), one of 1,000 streams, a
timestamp one millisecond after the previous one, and the three confidences in
turn. `target/release/logredact audit-summary FILE` then writes its table
(and, with --json, its JSON array) to /dev/null.

Reported for each run: wall time, peak RSS (ru_maxrss of that child, from
wait4) and peak RSS / N, the bytes each distinct fingerprint costs, counting
the binary itself (an upper bound). ru_maxrss of a child counts the parent's
resident set at the fork too, so a figure at or below this script's own RSS
(printed) says only "no more than that". With --long-line-mb M, also a file of
one well-formed record M MB long (its stream id is): its peak RSS, exit
status and message.

usage: benches/audit_summary.py [--fingerprints 1000000] [--json]
                                [--long-line-mb 0] [--work DIR]
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "logredact")
MIX = 0x9E3779B97F4A7C15
CONFIDENCES = ("low", "medium", "high")


def write_audit_file(path, n):
    """N records, one per distinct fingerprint; returns the file's size."""
    base_ms = 1_795_000_000_000  # 2026-11-18
    with open(path, "w") as out:
        lines = []
        for i in range(n):
            ms = base_ms + i
            secs, millis = divmod(ms, 1000)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"
            peer = i % 1000
            stream = f"tcp:10.0.{peer // 250}.{peer % 250}:{40000 + peer}" if peer % 2 else f"file:/var/log/pods/p{peer}/app/0.log"
            fingerprint = f"{(i * MIX) & 0xFFFFFFFFFFFFFFFF:016x}"
            lines.append(
                f'{{"ts":"{ts}","stream":"{stream}","rule":"databricks-pat","offset":{i * 37},'
                f'"line":{i + 1},"confidence":"{CONFIDENCES[i % 3]}","keywords":["bearer"],'
                f'"exclusions":[],"placeholder":false,"masked":true,"fingerprint":"{fingerprint}"}}\n'
            )
            if len(lines) == 10_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    return os.path.getsize(path)


def write_long_line(path, megabytes):
    """One well-formed record of MEGABYTES MB: its stream id is that long."""
    chunk = "a" * (1 << 20)
    with open(path, "w") as out:
        out.write('{"ts":"2026-11-18T00:00:00.000Z","stream":"file:/')
        for _ in range(megabytes):
            out.write(chunk)
        out.write('","rule":"databricks-pat","offset":0,"line":1,"confidence":"high","keywords":[],'
                  '"exclusions":[],"placeholder":false,"masked":true,"fingerprint":"0123456789abcdef"}\n')
    return os.path.getsize(path)


def summarise(path, json_output):
    """(exit status, wall seconds, peak RSS in KiB, stderr) of one audit-summary run."""
    args = [BINARY, "audit-summary", path] + (["--json"] if json_output else [])
    started = time.monotonic()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(args, stdout=null, stderr=subprocess.PIPE)
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, elapsed, usage.ru_maxrss, stderr.decode(errors="replace").strip()


def own_peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fingerprints", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="also time --json output")
    ap.add_argument("--long-line-mb", type=int, default=0, help="also one line of this many MB")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-audit-summary"))
    a = ap.parse_args()
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"build it first: cargo build --release ({BINARY} not found)")
    os.makedirs(a.work, exist_ok=True)

    small = os.path.join(a.work, "one.jsonl")
    write_audit_file(small, 1)
    big = os.path.join(a.work, f"audit-{a.fingerprints}.jsonl")
    size = write_audit_file(big, a.fingerprints)
    print(f"machine: {os.cpu_count()} CPUs; audit file: {a.fingerprints:,} records, "
          f"{a.fingerprints:,} distinct fingerprints, {size / 1e6:.0f} MB")

    status, _, peak, err = summarise(small, False)
    if status != 0:
        sys.exit(f"audit-summary failed on one record ({status}): {err}")
    print(f"this script's own peak RSS (a floor for the figures below): {own_peak_kib() / 1024:.1f} MiB")
    print(f"{'run':<24} {'status':<7} {'wall s':<8} {'peak RSS':<12} {'bytes/fingerprint'}")
    print(f"{'one record':<24} {status:<7} {'':<8} {peak / 1024:>8.1f} MiB")
    for json_output in [False, True] if a.json else [False]:
        status, elapsed, peak, err = summarise(big, json_output)
        if status != 0:
            sys.exit(f"audit-summary failed ({status}): {err}")
        per = peak * 1024 / a.fingerprints
        name = "table" if not json_output else "--json"
        print(f"{name:<24} {status:<7} {elapsed:<8.2f} {peak / 1024:>8.1f} MiB {per:>8.0f}")

    if a.long_line_mb:
        long_path = os.path.join(a.work, f"long-{a.long_line_mb}.jsonl")
        write_long_line(long_path, a.long_line_mb)
        status, elapsed, peak, err = summarise(long_path, False)
        print(f"{f'one {a.long_line_mb} MB line':<24} {status:<7} {elapsed:<8.2f} {peak / 1024:>8.1f} MiB")
        print(f"  its message: {err[:200]}")
        os.remove(long_path)
    os.remove(big)
    os.remove(small)


if __name__ == "__main__":
    main()
