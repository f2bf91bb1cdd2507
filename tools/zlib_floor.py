"""C zlib at one level over length-prefixed NDJSON objects on stdin, for `make bench`'s floor.

Each object arrives as a little-endian u32 length and its bytes; each is compressed whole as one
gzip member (wbits 31) by Python's zlib module, which is C zlib, and only the compression is timed
on this thread's CPU clock. Prints one JSON object at the end of the input.
"""

import json
import struct
import sys
import time
import zlib


def main() -> None:
    level = int(sys.argv[1])
    source = sys.stdin.buffer
    cpu = 0.0
    raw = compressed = objects = 0
    while head := source.read(4):
        (size,) = struct.unpack("<I", head)
        data = source.read(size)
        if len(data) != size:
            raise SystemExit(f"zlib_floor.py: object {objects} cut short")
        start = time.thread_time()
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        body = c.compress(data) + c.flush()
        cpu += time.thread_time() - start
        raw += size
        compressed += len(body)
        objects += 1
    json.dump(
        {
            "objects": objects,
            "raw_bytes": raw,
            "compressed_bytes": compressed,
            "cpu_seconds": cpu,
            "version": zlib.ZLIB_RUNTIME_VERSION,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
