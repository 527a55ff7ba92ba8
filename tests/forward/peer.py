# Fluent forward peers for tests/forward, written with the msgpack library
# (and Fluentd's own fluent-logger client): a receiver that plays the next
# hop, and senders of every mode. Values travel to and from the Rust tests
# as JSON: a string is a string, {"bin": HEX} is msgpack bin, {"ext": CODE,
# "data": HEX} an extension value (EventTime is code 0), lists and maps are
# themselves; a map key that is not a string is written "bin:HEX".
import argparse
import gzip
import hashlib
import json
import os
import socket
import ssl
import sys
import time

import msgpack


def to_msgpack(value):
    if isinstance(value, dict):
        if set(value) == {"bin"}:
            return bytes.fromhex(value["bin"])
        if set(value) == {"ext", "data"}:
            return msgpack.ExtType(value["ext"], bytes.fromhex(value["data"]))
        out = {}
        for key, item in value.items():
            if key.startswith("bin:"):
                key = bytes.fromhex(key[4:])
            out[key] = to_msgpack(item)
        return out
    if isinstance(value, list):
        return [to_msgpack(item) for item in value]
    return value


def to_json(value):
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": value.data.hex()}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, bytes):
                key = "bin:" + key.hex()
            out[key] = to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def sha512_hex(*parts):
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()


def next_message(connection, stream):
    for message in stream:
        return message
    while True:
        data = connection.recv(65536)
        if not data:
            raise OSError("closed in the handshake")
        stream.feed(data)
        for message in stream:
            return message


def server_handshake(connection, stream, args):
    """HELO, the PING checked against --shared-key (and --users), PONG."""
    nonce, user_salt = os.urandom(16), (os.urandom(16) if args.users else b"")
    connection.sendall(msgpack.packb(["HELO", {"nonce": nonce, "auth": user_salt, "keepalive": True}]))
    ping = next_message(connection, stream)
    _, hostname, salt, key_digest, username, password_digest = ping
    ok, reason = True, ""
    if key_digest != sha512_hex(salt, hostname, nonce, args.shared_key):
        ok, reason = False, "shared key mismatch"
    elif args.users:
        users = dict(u.split(":", 1) for u in args.users.split(","))
        if username not in users or password_digest != sha512_hex(user_salt, username, users[username]):
            ok, reason = False, "username/password mismatch"
    proof = sha512_hex(salt, "receiver", nonce, args.shared_key) if ok else ""
    connection.sendall(msgpack.packb(["PONG", ok, reason, "receiver", proof]))
    return ok


def client_handshake(connection, stream, args):
    """The HELO read, a PING with --shared-key (and --user), the PONG
    checked; prints it as {"pong": ok, "reason": ...}."""
    helo = next_message(connection, stream)
    nonce, user_salt = helo[1]["nonce"], helo[1].get("auth") or b""
    salt = os.urandom(16).hex()
    username, password = (args.user.split(":", 1) if args.user else ("", ""))
    password_digest = sha512_hex(user_salt, username, password) if args.user else ""
    connection.sendall(msgpack.packb(["PING", "sender", salt, sha512_hex(salt, "sender", nonce, args.shared_key),
                                      username, password_digest]))
    _, ok, reason, hostname, proof = next_message(connection, stream)
    if ok and proof != sha512_hex(salt, hostname, nonce, args.shared_key):
        ok, reason = False, "the server does not know the key"
    print(json.dumps({"pong": ok, "reason": reason}), flush=True)
    return ok


def unpacker():
    return msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=256 << 20)


def entries_of(message):
    """(mode, entries, option) of an event message."""
    tag, second = message[0], message[1]
    if isinstance(second, (int, msgpack.ExtType)):
        option = message[3] if len(message) > 3 else {}
        return "message", [[second, message[2]]], option or {}
    option = (message[2] if len(message) > 2 else {}) or {}
    if isinstance(second, list):
        return "forward", second, option
    if isinstance(second, str):
        second = second.encode("utf-8", "surrogateescape")
    if option.get("compressed") == "gzip":
        second = gzip.decompress(second)
        mode = "compressed"
    else:
        mode = "packed"
    stream = unpacker()
    stream.feed(second)
    return mode, list(stream), option


def receive(args):
    """The next hop: writes each entry as a JSON line to --out (flushed, and
    synced, before the message is acknowledged), acknowledges each message
    with a chunk unless --hold-acks names a file that does not exist yet."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(16)
    if args.tls_cert:
        # The next hop over TLS, as Fluent Bit's forward input with tls on.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server = context.wrap_socket(server, server_side=True)
    # A receiver killed in the middle of a line left it unfinished: that
    # message was not acknowledged, so it comes again; the line goes.
    if os.path.exists(args.out):
        with open(args.out, "rb+") as journal:
            data = journal.read()
            journal.truncate(data.rfind(b"\n") + 1)
    out = open(args.out, "a")
    print("listening", flush=True)
    received = 0
    while True:
        try:
            connection, _ = server.accept()
        except (ssl.SSLError, OSError):
            # A client whose TLS handshake failed.
            continue
        stream = unpacker()
        if args.shared_key:
            try:
                if not server_handshake(connection, stream, args):
                    connection.close()
                    continue
            except OSError:
                connection.close()
                continue
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                data = b""
            if not data:
                connection.close()
                break
            stream.feed(data)
            for message in stream:
                mode, entries, option = entries_of(message)
                for entry in entries:
                    line = {"tag": message[0], "mode": mode, "entry": to_json(entry)}
                    out.write(json.dumps(line) + "\n")
                out.flush()
                os.fsync(out.fileno())
                received += 1
                if args.crash_after and received >= args.crash_after:
                    print("crashing", flush=True)
                    os._exit(3)
                chunk = option.get("chunk")
                if chunk is None:
                    continue
                while args.hold_acks and not os.path.exists(args.hold_acks):
                    time.sleep(0.02)
                try:
                    connection.sendall(msgpack.packb({"ack": chunk}))
                except OSError:
                    # The sender (logredact, killed) is gone: the message
                    # comes again on its next connection.
                    break


def message_bytes(mode, tag, entries, chunk):
    option = {"chunk": chunk} if chunk else {}
    if mode == "message":
        (time_value, record), = entries
        return msgpack.packb([tag, time_value, record] + ([option] if option else []))
    if mode == "forward":
        return msgpack.packb([tag, entries] + ([option] if option else []))
    packed = b"".join(msgpack.packb(entry) for entry in entries)
    if mode == "compressed":
        option["compressed"] = "gzip"
        option["size"] = len(entries)
        return msgpack.packb([tag, gzip.compress(packed), option])
    return msgpack.packb([tag, packed] + ([option] if option else []))


def send(args):
    """Sends the messages of --messages (a JSON list of {"tag", "entries",
    "chunk"}) in --mode, or --raw hex bytes, or an --oversize message, or a
    gzip --bomb; waits for every acknowledgement asked for and prints each as
    a JSON line {"ack": chunk}; with --linger, then says whether the other
    side closed the connection ({"closed": true})."""
    connection = socket.create_connection(("127.0.0.1", args.port))
    if args.tls_ca:
        # A sender over TLS, as Fluent Bit's forward output with tls on and
        # tls.verify on: the server's certificate checked against the CA.
        context = ssl.create_default_context(cafile=args.tls_ca)
        try:
            connection = context.wrap_socket(connection, server_hostname="localhost")
        except (ssl.SSLError, OSError) as e:
            print(json.dumps({"tls": False, "error": type(e).__name__}), flush=True)
            return
    try:
        send_on(connection, args)
    except OSError as e:
        print(json.dumps({"closed": True, "error": type(e).__name__}), flush=True)
    connection.close()


def send_on(connection, args):
    stream = unpacker()
    if args.shared_key and not client_handshake(connection, stream, args):
        print(json.dumps({"closed": connection.recv(1) == b""}), flush=True)
        return
    if args.raw:
        connection.sendall(bytes.fromhex(args.raw))
    if args.oversize:
        # One record whose string alone is --oversize MiB.
        record = {"log": "x" * (args.oversize << 20)}
        connection.sendall(msgpack.packb(["app", [[1700000000, record]], {"chunk": "big"}]))
    if args.bomb:
        # Entries that inflate to --bomb MiB from a few hundred KiB of gzip.
        entry = msgpack.packb([1700000000, {"log": "z" * (1 << 20)}])
        packed = gzip.compress(entry * args.bomb)
        connection.sendall(msgpack.packb(["app", packed, {"chunk": "bomb", "compressed": "gzip"}]))
    wanted = []
    for message in json.load(open(args.messages)) if args.messages else []:
        entries = [to_msgpack(entry) for entry in message["entries"]]
        connection.sendall(message_bytes(args.mode, message["tag"], entries, message.get("chunk")))
        if message.get("chunk"):
            wanted.append(message["chunk"])
    connection.settimeout(args.ack_timeout)
    acked = 0
    try:
        while acked < len(wanted):
            data = connection.recv(65536)
            if not data:
                print(json.dumps({"closed": True}), flush=True)
                return
            stream.feed(data)
            for reply in stream:
                print(json.dumps(to_json(reply)), flush=True)
                acked += 1
    except socket.timeout:
        print(json.dumps({"timeout": True}), flush=True)
    if args.linger:
        # Whatever else comes is read until the other side closes.
        connection.shutdown(socket.SHUT_WR)
        try:
            while connection.recv(65536):
                pass
            print(json.dumps({"closed": True}), flush=True)
        except socket.timeout:
            print(json.dumps({"closed": False}), flush=True)


def reliable(args):
    """An at-least-once sender, as Fluent Bit with require_ack_response:
    sends --count messages of --entries entries each (Forward mode), keeps
    every unacknowledged one and sends them all again after a reconnection,
    until all are acknowledged. Acknowledged chunks are recorded in --state,
    so that a restarted sender sends only the rest."""
    tokens = json.load(open(args.messages))
    acked = set()
    if os.path.exists(args.state):
        acked = set(open(args.state).read().split())
    state = open(args.state, "a")
    messages = []
    for n in range(args.count):
        chunk = "c%05d" % n
        entries = []
        for e in range(args.entries):
            token = tokens[(n * args.entries + e) % len(tokens)]
            record = {"id": "%05d-%03d" % (n, e), "log": "Authorization: Bearer " + token, "n": n}
            entries.append([msgpack.ExtType(0, (1700000000 + n).to_bytes(4, "big") + e.to_bytes(4, "big")), record])
        messages.append((chunk, msgpack.packb(["app.reliable", entries, {"chunk": chunk, "size": len(entries)}])))
    pending = [(c, m) for c, m in messages if c not in acked]
    print("pending %d" % len(pending), flush=True)
    while pending:
        try:
            connection = socket.create_connection(("127.0.0.1", args.port), timeout=args.ack_timeout)
        except OSError:
            time.sleep(0.1)
            continue
        try:
            stream = unpacker()
            sent, in_flight = 0, set()
            while True:
                while sent < len(pending) and len(in_flight) < 8:
                    chunk, message = pending[sent]
                    connection.sendall(message)
                    in_flight.add(chunk)
                    sent += 1
                    if args.pace:
                        time.sleep(args.pace)
                if not in_flight:
                    break
                data = connection.recv(65536)
                if not data:
                    raise OSError("closed")
                stream.feed(data)
                for reply in stream:
                    chunk = reply["ack"]
                    in_flight.discard(chunk)
                    if chunk not in acked:
                        acked.add(chunk)
                        state.write(chunk + "\n")
                        state.flush()
            connection.close()
        except OSError:
            connection.close()
            time.sleep(0.1)
        pending = [(c, m) for c, m in pending if c not in acked]
    print("done", flush=True)


def logger(args):
    """Fluentd's own client: a FluentSender emits --messages' records with
    nanosecond EventTime."""
    from fluent import sender

    client = sender.FluentSender(args.tag, host="127.0.0.1", port=args.port, nanosecond_precision=True)
    for record in json.load(open(args.messages)):
        if not client.emit("log", to_msgpack(record)):
            print(json.dumps({"error": repr(client.last_error)}), flush=True)
            sys.exit(1)
    client.close()
    print(json.dumps({"sent": True}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["receive", "send", "reliable", "logger"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out")
    parser.add_argument("--hold-acks")
    parser.add_argument("--crash-after", type=int, default=0)
    parser.add_argument("--mode", default="forward")
    parser.add_argument("--messages")
    parser.add_argument("--raw")
    parser.add_argument("--ack-timeout", type=float, default=20.0)
    parser.add_argument("--linger", action="store_true")
    parser.add_argument("--oversize", type=int, default=0)
    parser.add_argument("--bomb", type=int, default=0)
    parser.add_argument("--state")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--entries", type=int, default=1)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--tag", default="app")
    parser.add_argument("--shared-key")
    parser.add_argument("--tls-cert", help="receiver: its certificate (with --tls-key)")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-ca", help="sender: the CA that signs the server's certificate")
    parser.add_argument("--users", help="user:password,... (receiver)")
    parser.add_argument("--user", help="user:password (sender)")
    args = parser.parse_args()
    {"receive": receive, "send": send, "reliable": reliable, "logger": logger}[args.command](args)


if __name__ == "__main__":
    main()
