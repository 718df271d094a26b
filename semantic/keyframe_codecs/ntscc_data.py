"""Random training crops from a folder of images (NTSCC training).

Images: ``*.png``, ``*.jpg``, ``*.jpeg`` (any case) anywhere under the folder,
read with PIL as RGB. An image smaller than the crop is first resized
(bicubic) so its short side equals the crop. Batches are float32
[B, 3, crop, crop] in [0, 1]; every random choice comes from the passed
``torch.Generator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_images(root: str | Path) -> list[Path]:
    """Sorted image paths under ``root``; ValueError naming the folder if none."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"no .png/.jpg images under {root}")
    return files


def random_crop(path: Path, crop: int, generator: torch.Generator) -> torch.Tensor:
    """float32 [3, crop, crop] in [0, 1] from a random position of the image at ``path``."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if min(w, h) < crop:
            s = crop / min(w, h)
            im = im.resize((max(crop, round(w * s)), max(crop, round(h * s))), Image.BICUBIC)
            w, h = im.size
        top = int(torch.randint(0, h - crop + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - crop + 1, (1,), generator=generator))
        arr = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.float32)
    return torch.from_numpy(arr / 255.0).permute(2, 0, 1).contiguous()


def sample_batch(files: list[Path], crop: int, batch: int,
                 generator: torch.Generator) -> torch.Tensor:
    """[batch, 3, crop, crop] random crops of randomly chosen files (with replacement)."""
    picks = torch.randint(0, len(files), (batch,), generator=generator).tolist()
    return torch.stack([random_crop(files[i], crop, generator) for i in picks])
