#!/usr/bin/env python3
"""A Hyperscan-based redaction filter for the peer benchmark: stdin to stdout,
`\\bdapi[0-9a-f]{32}\\b` -> `dapi****`, scanning 1 MiB blocks cut after a
newline (block mode with start-of-match reporting)."""
import sys

import hyperscan

PATTERN = rb"\bdapi[0-9a-f]{32}\b"
MASK = b"dapi****"
BLOCK = 1 << 20


def main():
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[PATTERN], ids=[0], flags=[hyperscan.HS_FLAG_SOM_LEFTMOST])
    read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
    rest = b""
    while True:
        data = read(BLOCK)
        if not data:
            block, rest = rest, b""
        else:
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
        if block:
            spans = []
            db.scan(block, match_event_handler=lambda _id, start, end, _flags, _ctx: spans.append((start, end)))
            out, at = [], 0
            for start, end in sorted(spans):
                if start >= at:
                    out.append(block[at:start])
                    out.append(MASK)
                    at = end
            out.append(block[at:])
            write(b"".join(out))
        if not data:
            return


if __name__ == "__main__":
    main()
