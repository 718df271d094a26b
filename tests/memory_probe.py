"""Run one trial of one scheme on a video file in this process (a memory test runs it
in a fresh process and reads its peak RSS):

    python tests/memory_probe.py CLIP FRAMES 'SCHEME_JSON'
    python tests/memory_probe.py CLIP FRAMES keyframes
"""

from __future__ import annotations

import json
import sys


def main(clip: str, frames: int, scheme: str) -> None:
    if scheme == "keyframes":
        from lgvsc.sim.cli import main as cli

        sys.exit(cli(["keyframes", clip, "--frames", str(frames), "--json"]))
    from lgvsc.sim import units as U
    from lgvsc.sim.scenario import validate

    sc = validate({"name": "memory", "kind": "video", "seed": 3,
                   "videos": [{"source": clip, "frames": frames}],
                   "channel": {"type": "awgn", "snr_db": [6.0]},
                   "schemes": [json.loads(scheme)], "metrics": ["psnr", "ssim"]})
    blob = sc.model_dump_json()
    for unit in U.plan_units(sc):
        row = U.execute_unit(blob, unit)
        assert len(row["extra"]["frame_metrics"]["psnr"]) == frames
    print(json.dumps(row["metrics"]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
