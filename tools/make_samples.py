"""Writes a few test digits of data/mnist as 28x28 greyscale PNGs into data/samples/,
for `cargo run --example predict`. Standard library only: gzip, zlib, struct.

    python3 tools/make_samples.py
"""
import gzip
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = 5


def read_idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def png(width, height, pixels):
    """An 8-bit greyscale PNG (colour type 0), one filter byte (0) per row."""
    raw = b"".join(b"\x00" + pixels[r * width : (r + 1) * width] for r in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    (n, h, w), images = read_idx(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz")
    _, labels = read_idx(ROOT / "data/mnist/t10k-labels-idx1-ubyte.gz")
    out = ROOT / "data/samples"
    out.mkdir(exist_ok=True)
    for k in range(COUNT):
        pixels = images[k * h * w : (k + 1) * h * w]
        path = out / f"test{k}_label{labels[k]}.png"
        path.write_bytes(png(w, h, pixels))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
