#!/usr/bin/env python3
"""Pipe-mode benchmark: logredact against `cat | cat` and its peers in the same run.

Generates the corpora with benches/gen_corpus.py, checks every tool's output
against the reference redaction (a tool whose output differs is reported, not
timed), then times `cat corpus | TOOL > /dev/null` in alternating rounds and
prints medians, min-max, CPU time, CPU seconds per GB of input and the ratio
to `cat | cat`. The wall-time ratio swings with how fast `cat | cat` happens to
be on the day; CPU seconds per GB is the steadier figure.

Peers: perl, GNU sed (C locale), ripgrep 15 (`cargo install` into target/),
Python `re`, and a Hyperscan filter (PyPI `hyperscan`, in a venv under
target/). Installs what it needs on first use.

usage: benches/peers.py [--size-mb 256] [--profiles mixed,dense] [--rounds 5]
                        [--tools cat,logredact,...] [--work DIR]
"""
import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "benches", "gen_corpus.py")
BINARY = os.path.join(ROOT, "target", "release", "logredact")

TOOLS_DIR = os.path.join(ROOT, "target", "bench-tools")
RG = os.path.join(TOOLS_DIR, "bin", "rg")
VENV = os.path.join(TOOLS_DIR, "venv")
PACK_CONFIG = os.path.join(TOOLS_DIR, "ten-rules.yaml")
PATTERN = r"\bdapi[0-9a-f]{32}\b"

# name -> shell command reading stdin and writing stdout.
TOOLS = {
    "cat": "cat",
    "logredact": shlex.quote(BINARY),
    "logredact-10rules": f"{shlex.quote(BINARY)} --config {shlex.quote(PACK_CONFIG)}",
    "ripgrep": f"{shlex.quote(RG)} --no-config --passthru -a -N --color never -r 'dapi****' '{PATTERN}'",
    "perl": f"perl -pe 's/{PATTERN}/dapi****/g'",
    "sed": f"env LC_ALL=C sed -E 's/{PATTERN}/dapi****/g'",
    "python-re": (f"{shlex.quote(sys.executable)} -c \"import re,sys; p=re.compile(rb'{PATTERN}'); "
                  "w=sys.stdout.buffer.write; [w(p.sub(b'dapi****', l)) for l in sys.stdin.buffer]\""),
    "hyperscan": f"{shlex.quote(os.path.join(VENV, 'bin', 'python'))} {shlex.quote(os.path.join(ROOT, 'benches', 'hs_redact.py'))}",
}


def install(tools):
    """Installs the peers that are not on the machine yet."""
    os.makedirs(TOOLS_DIR, exist_ok=True)
    if "ripgrep" in tools and not os.path.exists(RG):
        subprocess.run(["cargo", "install", "--locked", "--quiet", "--root", TOOLS_DIR, "ripgrep@^15"], check=True)
    if "hyperscan" in tools and not os.path.exists(os.path.join(VENV, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "hyperscan"], check=True)
    if "logredact-10rules" in tools:
        # The default rule and the nine rules of the credential pack.
        with open(PACK_CONFIG, "w") as out:
            out.write(f"include: [{os.path.join(ROOT, 'config', 'rules', 'common-credentials.yaml')}]\n")


def generate(work, profile, size_mb):
    corpus = os.path.join(work, f"{profile}-{size_mb}mb.log")
    expected = corpus + ".expected"
    for path, extra in ((corpus, []), (expected, ["--expected"])):
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as out:
                subprocess.run([sys.executable, GEN, "--size-mb", str(size_mb), "--profile", profile] + extra,
                               stdout=out, check=True)
            os.rename(path + ".tmp", path)
    return corpus, expected


def output_matches(command, corpus, expected):
    """Runs the tool once and compares its output with the reference, byte for byte."""
    with open(corpus, "rb") as stdin:
        proc = subprocess.Popen(["sh", "-c", command], stdin=stdin, stdout=subprocess.PIPE)
        cmp = subprocess.run(["cmp", "-s", "-", expected], stdin=proc.stdout)
        proc.stdout.close()
        proc.wait()
    return proc.returncode == 0 and cmp.returncode == 0


def timed(command, corpus):
    """Wall and CPU seconds (user+sys of the whole pipeline) of `cat corpus | command > /dev/null`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["sh", "-c", f"cat {shlex.quote(corpus)} | {command} > /dev/null"], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def peak_rss_kib(command, corpus):
    """Peak resident set of the tool alone, fed the corpus on stdin: the last
    VmHWM read from /proc before it exits. (ru_maxrss would include the forked
    Python parent's memory from before the exec.)"""
    peak = 0
    with open(corpus, "rb") as stdin, open(os.devnull, "wb") as null:
        proc = subprocess.Popen(["sh", "-c", f"exec {command}"], stdin=stdin, stdout=null)
        time.sleep(0.005)  # let the exec happen before the first reading
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(0.002)
    return peak


def describe(values):
    return f"{statistics.median(values):7.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--dense-size-mb", type=int, default=64)
    ap.add_argument("--profiles", default="mixed")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tools", default="cat,logredact,logredact-10rules,ripgrep,perl,sed,python-re,hyperscan")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-corpus"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tools = [t for t in a.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        sys.exit(f"unknown tools: {', '.join(unknown)} (known: {', '.join(TOOLS)})")
    install(tools)
    print(f"machine: {os.cpu_count()} CPUs, {os.uname().sysname} {os.uname().release}")
    for profile in a.profiles.split(","):
        size = a.dense_size_mb if profile == "dense" else a.size_mb
        corpus, expected = generate(a.work, profile, size)
        print(f"\n== {profile}, {size} MB, {a.rounds} alternating rounds ==")
        timed_tools = ["cat"]
        for tool in tools:
            if tool == "cat":
                continue
            if output_matches(TOOLS[tool], corpus, expected):
                timed_tools.append(tool)
            else:
                print(f"{tool}: output differs from the reference redaction; not timed")
        walls = {t: [] for t in timed_tools}
        cpus = {t: [] for t in timed_tools}
        for _ in range(a.rounds):
            for tool in timed_tools:
                wall, cpu = timed(TOOLS[tool], corpus)
                walls[tool].append(wall)
                cpus[tool].append(cpu)
        base = statistics.median(walls["cat"])
        gigabytes = os.path.getsize(corpus) / 1e9
        print(f"{'tool':<18} {'wall s, median (min-max)':<28} {'cpu s, median':<14} {'cpu s/GB':<9} {'ratio to cat|cat':<17} peak RSS")
        for tool in timed_tools:
            ratio = statistics.median(walls[tool]) / base
            rss = peak_rss_kib(TOOLS[tool], corpus)
            label = "cat | cat" if tool == "cat" else tool
            cpu = statistics.median(cpus[tool])
            print(f"{label:<18} {describe(walls[tool]):<28} {cpu:<14.3f} {cpu / gigabytes:<9.2f} "
                  f"{ratio:<17.2f} {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
