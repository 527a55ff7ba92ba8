#!/usr/bin/env python3
"""Many followed files: logredact following N files under one `follow:` pattern
while a writer appends to all of them, against pipe mode over the same bytes.

The corpus (benches/gen_corpus.py) is dealt out line by line, round-robin, to N
files (`pods/NNNN/app/0.log`); the writer appends to every file in turn, a
slice of lines at a time, while logredact follows `pods/*/app/0.log` into an
output file. Done when the output has as many lines as the corpus; then
SIGTERM. Checked: the output, sorted, equals the reference redaction, sorted
(files are streams of their own, so only the order within one file is fixed).

Both modes write to a pipe (as a sidecar's standard output is one) that this
script reads; the time it spends reading is its own, not logredact's.

Reported, for follow mode and for `logredact < corpus` in the same run:
logredact's CPU seconds (user+sys, from /proc) per GB of input, their ratio,
and peak RSS (VmHWM). Also the CPU logredact spends per second with the N
files followed and quiet (polling).

usage: benches/follow_files.py [--files 1000] [--size-mb 128] [--rounds 3]
                               [--profile mixed] [--work DIR]
"""
import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import generate  # noqa: E402  (the same corpora, made the same way)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "logredact")
TICKS = os.sysconf("SC_CLK_TCK")


class Watched:
    """A running logredact whose CPU time and peak RSS are read from /proc."""

    def __init__(self, args, stdin=None, stdout=None):
        self.proc = subprocess.Popen([BINARY] + args, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
        self.cpu = 0.0
        self.peak_kib = 0

    def sample(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / TICKS
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass

    def threads(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        return 0


class Drain:
    """Reads a pipe to its end on a thread, keeping what it read and counting
    its lines."""

    def __init__(self, pipe, keep):
        self.pipe, self.keep = pipe, keep
        self.chunks, self.lines = [], 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            chunk = self.pipe.read1(1 << 20)
            if not chunk:
                return
            self.lines += chunk.count(b"\n")
            if self.keep:
                self.chunks.append(chunk)

    def output(self):
        self.thread.join()
        return b"".join(self.chunks)


def pipe_peak_kib(corpus):
    with open(corpus, "rb") as stdin:
        run = Watched([], stdin=stdin, stdout=subprocess.PIPE)
        drain = Drain(run.proc.stdout, keep=False)
        while run.proc.poll() is None:
            run.sample()
            time.sleep(0.002)
        drain.output()
    return run.peak_kib


def pipe_cpu(corpus):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(corpus, "rb") as stdin:
        proc = subprocess.Popen([BINARY], stdin=stdin, stdout=subprocess.PIPE)
        Drain(proc.stdout, keep=False).output()
        if proc.wait() != 0:
            sys.exit("pipe mode failed")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def deal(corpus, files):
    """The corpus's lines dealt round-robin to `files` lists."""
    shares = [[] for _ in range(files)]
    with open(corpus, "rb") as source:
        for i, line in enumerate(source):
            shares[i % files].append(line)
    return shares


def follow_run(work, shares, expected_lines, slices):
    """Follows len(shares) files while appending each share in `slices`
    pieces; returns (cpu seconds, peak KiB, idle cpu per second, threads)."""
    pods = os.path.join(work, "pods")
    shutil.rmtree(pods, ignore_errors=True)
    state = os.path.join(work, "state")
    shutil.rmtree(state, ignore_errors=True)
    paths = []
    for n in range(len(shares)):
        path = os.path.join(pods, f"{n:04}", "app", "0.log")
        os.makedirs(os.path.dirname(path))
        open(path, "wb").close()
        paths.append(path)
    run = Watched(["--input", f"follow:{pods}/*/app/0.log", "--state-dir", state], stdout=subprocess.PIPE)
    drain = Drain(run.proc.stdout, keep=True)
    # Every file is found (the pattern is matched every second) and quiet:
    # the cost of following them idle.
    time.sleep(3)
    run.sample()
    idle_start, idle_at = run.cpu, time.monotonic()
    time.sleep(5)
    run.sample()
    idle = (run.cpu - idle_start) / (time.monotonic() - idle_at)
    threads = run.threads()
    run.sample()
    before = run.cpu
    handles = [open(p, "ab", buffering=0) for p in paths]
    for s in range(slices):
        for handle, share in zip(handles, shares):
            lo, hi = len(share) * s // slices, len(share) * (s + 1) // slices
            if hi > lo:
                handle.write(b"".join(share[lo:hi]))
        run.sample()
    for handle in handles:
        handle.close()
    while drain.lines < expected_lines:
        run.sample()
        time.sleep(0.05)
    run.sample()
    run.proc.send_signal(signal.SIGTERM)
    run.proc.wait()
    output = sorted(drain.output().splitlines(keepends=True))
    # From the first append to the last line written, polling included.
    return run.cpu - before, run.peak_kib, idle, threads, output


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size-mb", type=int, default=128)
    ap.add_argument("--slices", type=int, default=16, help="appends per file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", default="mixed")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-follow"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    corpus, expected = generate(os.path.join(ROOT, "target", "bench-corpus"), a.profile, a.size_mb)
    with open(expected, "rb") as reference:
        expected_sorted = sorted(reference.read().splitlines(keepends=True))
    shares = deal(corpus, a.files)
    gigabytes = os.path.getsize(corpus) / 1e9
    print(f"machine: {os.cpu_count()} CPUs; {a.profile} corpus {a.size_mb} MB dealt to {a.files} files, "
          f"{a.slices} appends each; {a.rounds} alternating rounds")
    pipe_cpus, follow_cpus, pipe_peaks, follow_peaks, idles = [], [], [], [], []
    threads = 0
    for _ in range(a.rounds):
        pipe_cpus.append(pipe_cpu(corpus))
        pipe_peaks.append(pipe_peak_kib(corpus))
        cpu, peak, idle, threads, output = follow_run(a.work, shares, len(expected_sorted), a.slices)
        if output != expected_sorted:
            sys.exit("follow mode: the output differs from the reference redaction")
        follow_cpus.append(cpu)
        follow_peaks.append(peak)
        idles.append(idle)
    pipe = statistics.median(pipe_cpus) / gigabytes
    follow = statistics.median(follow_cpus) / gigabytes
    print(f"{'mode':<28} {'cpu s/GB, median':<18} {'peak RSS':<10}")
    print(f"{'pipe (stdin)':<28} {pipe:<18.2f} {max(pipe_peaks) / 1024:.1f} MiB")
    print(f"{f'follow, {a.files} files':<28} {follow:<18.2f} {max(follow_peaks) / 1024:.1f} MiB")
    print(f"follow / pipe CPU per GB: {follow / pipe:.2f}x; output checked against the reference (sorted lines)")
    print(f"idle, {a.files} files followed and quiet: {statistics.median(idles) * 100:.1f}% of one CPU; "
          f"{threads} threads")


if __name__ == "__main__":
    main()
