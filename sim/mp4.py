"""H.264 mp4 encoding of uint8 RGB frames through PyAV, in a child process.

``python -m lgvsc.sim.mp4 HEIGHT WIDTH FPS_NUM FPS_DEN`` reads raw rgb24 frames
(``HEIGHT x WIDTH x 3`` bytes each, even sizes) on stdin until it closes and writes
the mp4 on stdout. :class:`~lgvsc.sim.media.Mp4Writer` runs it so that every
encode starts from a clean process: in a process that has run other native code
(torch's thread pools), the same x264 encode of the same frames was seen to come
out different (1 of 30 in one measurement; 0 of 12 in fresh processes), and saved
media must be byte-identical when made again. Imports numpy and av only.
"""

from __future__ import annotations

import io
import sys
from fractions import Fraction

#: x264: visually lossless, 4:2:0 with BT.601 limited range said in the VUI
X264_OPTIONS = {"crf": "18", "preset": "medium", "threads": "1",
                "x264-params": "colormatrix=smpte170m:colorprim=smpte170m:transfer=bt709:"
                               "range=tv"}


def encode(stream_in, height: int, width: int, rate: Fraction) -> bytes:
    """The mp4 of the raw rgb24 frames read from the binary file ``stream_in``."""
    import av
    import numpy as np

    size = height * width * 3
    buf = io.BytesIO()
    box = av.open(buf, "w", format="mp4")
    stream = box.add_stream("libx264", rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.options = dict(X264_OPTIONS)
    while True:
        data = stream_in.read(size)
        if not data:
            break
        if len(data) != size:
            raise ValueError(f"a partial frame ({len(data)} of {size} bytes)")
        frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            box.mux(packet)
    for packet in stream.encode():
        box.mux(packet)
    box.close()
    return buf.getvalue()


def main(argv: list[str]) -> int:
    h, w, num, den = (int(a) for a in argv)
    sys.stdout.buffer.write(encode(sys.stdin.buffer, h, w, Fraction(num, den)))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
