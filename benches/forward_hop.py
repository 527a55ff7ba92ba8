#!/usr/bin/env python3
"""Forward-hop benchmark: records per second and CPU per record through
logredact's forward hop, against a non-redacting relay on the same path.

    sender -> [logredact --input forward:// --output forward://] -> receiver
    sender -> [examples/forward_relay: bytes copied both ways]  -> receiver
    sender -> [fluent-bit: forward input -> forward output]      -> receiver
                                             (with --fluent-bit PATH only)

The sender sends PackedForward messages (what Fluent Bit's and Fluentd's
forward outputs send) of --records records each, each record four fields of
200 bytes, one record in ten with a token; it keeps --window messages in
flight and waits for each acknowledgement, as Fluent Bit does with
require_ack_response. The receiver acknowledges each message; with
logredact, it first checks (in the first message of each run) that no raw
token went through and that the tokens are masked.

Each round runs every relay, one after another; printed: median records/s
(records over the time until every record has reached the receiver and
every acknowledgement the sender) and the relay's CPU time (user + system,
from /proc) per record, and logredact's figures over the byte relay's.

The byte relay is the least any relay on the path can cost: it parses
nothing. With --fluent-bit PATH (a Fluent Bit binary with the forward
plugins), a real non-redacting forward hop is measured in the same rounds:
Fluent Bit's forward input to its forward output (require_ack_response on,
flush 0.1 s, its defaults otherwise). It differs from the other two in ways
that favour it: it acknowledges each message to the sender once it has
buffered it, not once the receiver has it, and it sends its own chunks. The sender and the receiver are Python, in a venv
under target/ (msgpack from PyPI); their cost is the same on both paths, and
the CPU figure counts the relay process alone. The peers' CPU (this
process's user + system time per record) is printed beside it: on a small
machine the peers share the CPUs with the relay, so the throughput ratio
depends on the CPU every process takes.

usage: benches/forward_hop.py [--messages 200] [--records 1000] [--rounds 5]
                              [--window 8] [--fluent-bit PATH] [--json]
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "logredact")
RELAY = os.path.join(ROOT, "target", "release", "examples", "forward_relay")
VENV = os.path.join(ROOT, "target", "bench-forward-venv")
TOKEN = re.compile(rb"(?<![0-9A-Za-z_])dapi[0-9a-f]{32}(?![0-9A-Za-z_])")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-r",
                        os.path.join(ROOT, "tests", "forward", "requirements.txt")], check=True)
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(python, [python] + sys.argv)


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "forward_relay"],
                   cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def own_cpu_seconds():
    """CPU time of this process: the sender and the receiver."""
    times = os.times()
    return times.user + times.system


def entries_blob(records, seed):
    import msgpack
    rng = __import__("random").Random(seed)
    hexdigits = "0123456789abcdef"
    out = []
    for n in range(records):
        fields = {}
        for name in ("log", "pod", "request", "detail"):
            fields[name] = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz=,:") for _ in range(200))
        if n % 10 == 0:
            token = "dapi" + "".join(rng.choice(hexdigits) for _ in range(32))
            fields["log"] = "Authorization: Bearer " + token + " " + fields["log"][: 200 - 59]
        out.append(msgpack.packb([msgpack.ExtType(0, (1700000000 + n).to_bytes(4, "big") + bytes(4)), fields]))
    return b"".join(out)


class Receiver:
    """Acknowledges every message; counts records from option.size."""

    def __init__(self, port, check, expected):
        import msgpack
        self.msgpack = msgpack
        self.expected = expected
        self.done = threading.Event()
        self.done_at = None
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(16)
        self.check = check
        self.records = 0
        self.checked = None
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(connection,), daemon=True).start()

    def connection(self, connection):
        """Reads messages [tag, entries, option] without decoding the entries
        (skipped: the receiver's cost must not depend on their form, packed
        or an array), but for the first one checked."""
        unpacker = self.msgpack.Unpacker(raw=False, max_buffer_size=512 << 20)
        stage, message = "header", {}
        while True:
            data = connection.recv(1 << 20)
            if not data:
                return
            unpacker.feed(data)
            try:
                while True:
                    # Each step either completes or raises OutOfData and is
                    # taken up again, where it stopped, when more has come.
                    if stage == "header":
                        message = {"elements": unpacker.read_array_header()}
                        stage = "tag"
                    if stage == "tag":
                        unpacker.skip()
                        stage = "entries"
                    if stage == "entries":
                        if self.check and self.checked is None:
                            packed = unpacker.unpack()
                            self.checked = (not TOKEN.search(packed)) and b"Bearer dapi****" in packed
                        else:
                            unpacker.skip()
                        stage = "option"
                    if stage == "option":
                        option = unpacker.unpack() if message["elements"] == 3 else {}
                        stage = "header"
                        self.message(connection, option)
            except self.msgpack.OutOfData:
                pass

    def message(self, connection, option):
        self.records += option["size"]
        if self.records >= self.expected and not self.done.is_set():
            self.done_at = time.perf_counter()
            self.done.set()
        connection.sendall(self.msgpack.packb({"ack": option["chunk"]}))

    def close(self):
        self.server.close()


def send(port, blob, records, messages, window):
    import msgpack
    connection = socket.create_connection(("127.0.0.1", port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    unpacker = msgpack.Unpacker(raw=False)
    in_flight, sent = 0, 0
    started = time.perf_counter()
    while sent < messages or in_flight:
        while sent < messages and in_flight < window:
            option = {"chunk": "m%d" % sent, "size": records}
            connection.sendall(msgpack.packb(["bench", blob, option], use_bin_type=True))
            sent += 1
            in_flight += 1
        data = connection.recv(65536)
        if not data:
            raise SystemExit("the relay closed the connection")
        unpacker.feed(data)
        for _ in unpacker:
            in_flight -= 1
    acknowledged = time.perf_counter()
    connection.close()
    return started, acknowledged


def fluent_bit_command(binary, relay_port, receiver_port):
    """Fluent Bit as a forward hop: its forward input to its forward output."""
    directory = os.path.join(ROOT, "target", "bench-forward")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "fluent-bit-%d.conf" % relay_port)
    with open(path, "w") as f:
        f.write("[SERVICE]\n    flush 0.1\n    log_level error\n"
                "[INPUT]\n    name forward\n    listen 127.0.0.1\n    port %d\n"
                "[OUTPUT]\n    name forward\n    match *\n    host 127.0.0.1\n    port %d\n"
                "    require_ack_response true\n" % (relay_port, receiver_port))
    return [binary, "-c", path]


def run(kind, args, blob):
    receiver_port, relay_port = free_port(), free_port()
    total = args.records * args.messages
    receiver = Receiver(receiver_port, check=(kind == "logredact"), expected=total)
    if kind == "logredact":
        command = [BINARY, "--input", "forward://127.0.0.1:%d" % relay_port,
                   "--output", "forward://127.0.0.1:%d" % receiver_port]
    elif kind == "fluent-bit":
        command = fluent_bit_command(args.fluent_bit, relay_port, receiver_port)
    else:
        command = [RELAY, "127.0.0.1:%d" % relay_port, "127.0.0.1:%d" % receiver_port]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", relay_port)).close()
                break
            except OSError:
                time.sleep(0.02)
        cpu_before = cpu_seconds(process.pid)
        peers_before = own_cpu_seconds()
        started, acknowledged = send(relay_port, blob, args.records, args.messages, args.window)
        receiver.done.wait(120)
        elapsed = max(acknowledged, receiver.done_at or acknowledged) - started
        cpu = cpu_seconds(process.pid) - cpu_before
        peers = own_cpu_seconds() - peers_before
    finally:
        process.terminate()
        process.wait()
        receiver.close()
    if receiver.records != total:
        raise SystemExit("%s: %d records received of %d" % (kind, receiver.records, total))
    if kind == "logredact" and not receiver.checked:
        raise SystemExit("logredact: a raw token went through, or no token was masked")
    return total / elapsed, cpu / total * 1e6, peers / total * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--fluent-bit", metavar="PATH",
                        help="also measure Fluent Bit's forward input to forward output")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.fluent_bit:
        args.fluent_bit = os.path.abspath(args.fluent_bit)
    ensure_venv()
    build()
    blob = entries_blob(args.records, 1)
    kinds = ["relay"] + (["fluent-bit"] if args.fluent_bit else []) + ["logredact"]
    results = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            results[kind].append(run(kind, args, blob))
    summary = {}
    for kind, rows in results.items():
        rates = [r for r, _, _ in rows]
        cpus = [c for _, c, _ in rows]
        peers = [p for _, _, p in rows]
        summary[kind] = {
            "records_per_s": statistics.median(rates),
            "records_per_s_range": [min(rates), max(rates)],
            "cpu_us_per_record": statistics.median(cpus),
            "cpu_us_per_record_range": [min(cpus), max(cpus)],
            "peers_cpu_us_per_record": statistics.median(peers),
        }
    summary["ratio"] = {
        "throughput": summary["logredact"]["records_per_s"] / summary["relay"]["records_per_s"],
        "cpu_per_record": summary["logredact"]["cpu_us_per_record"] / summary["relay"]["cpu_us_per_record"],
    }
    if args.fluent_bit:
        summary["ratio_fluent_bit"] = {
            "throughput": summary["logredact"]["records_per_s"]
            / summary["fluent-bit"]["records_per_s"],
            "cpu_per_record": summary["logredact"]["cpu_us_per_record"]
            / summary["fluent-bit"]["cpu_us_per_record"],
        }
    summary["setup"] = {"messages": args.messages, "records_per_message": args.records,
                        "fields": "4 x 200 bytes, a token in 1 record of 10",
                        "rounds": args.rounds, "window": args.window,
                        "message_bytes": len(blob)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print("%-11s %14s %22s %16s %22s %12s" % ("relay", "records/s", "(min-max)", "CPU us/record",
                                              "(min-max)", "peers' CPU"))
    for kind in kinds:
        s = summary[kind]
        print("%-11s %14.0f %10.0f-%-11.0f %16.2f %10.2f-%-11.2f %12.2f" % (
            kind, s["records_per_s"], s["records_per_s_range"][0], s["records_per_s_range"][1],
            s["cpu_us_per_record"], s["cpu_us_per_record_range"][0], s["cpu_us_per_record_range"][1],
            s["peers_cpu_us_per_record"]))
    print("logredact / relay: throughput %.2f, CPU per record %.2f" % (
        summary["ratio"]["throughput"], summary["ratio"]["cpu_per_record"]))
    if args.fluent_bit:
        print("logredact / fluent-bit: throughput %.2f, CPU per record %.2f" % (
            summary["ratio_fluent_bit"]["throughput"],
            summary["ratio_fluent_bit"]["cpu_per_record"]))


if __name__ == "__main__":
    main()
