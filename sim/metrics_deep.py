"""Metrics that need network weights: ``lpips`` (VGG), ``dists`` and ``clip``.

None of the weights can be downloaded by lgvsc; they are found locally:

* VGG16 (``lpips``, ``dists``): the file named by ``LGVSC_VGG16`` (a
  torchvision ``vgg16`` state dict; only ``features.*`` is used), else
  torchvision's cache ``<torch hub dir>/checkpoints/vgg16-397923af.pth``.
  LPIPS's linear heads and DISTS's alpha/beta ship inside their packages.
* CLIP ViT-B/32 (``clip``): the folder named by ``LGVSC_CLIP`` (a
  ``CLIPModel`` + image processor saved with ``save_pretrained``), else
  ``openai/clip-vit-base-patch32`` in the Hugging Face cache. The score is
  the image-image cosine of each frame pair, mapped to ``(cos + 1) / 2``.

When something is missing the metric is *unavailable*: the runner says why
once and records no value (never a zero).

The networks load through the process's model cache
(:func:`~lgvsc.semantic.model_cache.model_cache`, kinds ``lpips`` / ``dists`` /
``clip``, float32, on the scenario's device): one copy per process however many
metric objects ask, listed before a run by :meth:`DeepMetric.model_info`.
"""

from __future__ import annotations

import math

import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np

from ..semantic.model_cache import ModelInfo, ModelKey, estimate_bytes, model_cache
from .metrics import METRICS, Metric

VGG16_FILE = "vgg16-397923af.pth"
CLIP_REPO = "openai/clip-vit-base-patch32"
BATCH = 8


def find_vgg16() -> Path | None:
    env = os.environ.get("LGVSC_VGG16")
    if env:
        return Path(env) if Path(env).is_file() else None
    import torch

    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return p if p.is_file() else None


def _vgg_reason() -> str:
    import torch

    where = os.environ.get("LGVSC_VGG16") or Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return f"VGG16 weights not found at {where} (set LGVSC_VGG16 to a torchvision vgg16 .pth)"


def _vgg16_features():
    """torchvision VGG16 ``features`` with weights from :func:`find_vgg16`."""
    import torch
    from torchvision.models import vgg16

    net = vgg16(weights=None)
    state = torch.load(find_vgg16(), map_location="cpu", weights_only=True)
    feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    missing = net.features.load_state_dict(feats, strict=False).missing_keys
    if missing:
        raise ValueError(f"{find_vgg16()}: not a vgg16 state dict (missing features.{missing[0]})")
    return net


def _batches(ref: np.ndarray, test: np.ndarray, scale: str):
    import torch

    for i in range(0, len(ref), BATCH):
        a = torch.from_numpy(ref[i:i + BATCH]).permute(0, 3, 1, 2).float() / 255
        b = torch.from_numpy(test[i:i + BATCH]).permute(0, 3, 1, 2).float() / 255
        yield (a * 2 - 1, b * 2 - 1) if scale == "pm1" else (a, b)


class DeepMetric(Metric):
    """A metric computed by a network with local weights, loaded through the model
    cache on first use (:meth:`net`)."""

    #: input range the network expects: "pm1" = [-1, 1], "unit" = [0, 1]
    scale = "unit"

    def weights(self) -> Path:
        """The weights file or folder the network loads (resolved, absolute)."""
        raise NotImplementedError

    def build(self):
        """The network (on the CPU, float32), built from :meth:`weights`."""
        raise NotImplementedError

    def model_info(self) -> list[ModelInfo]:
        """The model this metric loads (key and memory in float32); nothing is loaded."""
        import torch

        path = self.weights()
        key = ModelKey(self.name, str(path), "float32", str(torch.device(self.device)))
        return [ModelInfo(key, estimate_bytes(path, "float32"), f"{self.name} metric")]

    def net(self):
        """The loaded network: one copy per process and key, whichever object asks."""
        (info,) = self.model_info()
        return model_cache().get(info.key, lambda: self.build().to(self.device).eval(),
                                 info.bytes)

    def frame_scores(self, ref, test):
        """Batched distance network ``net()(x, y)`` -> one score per frame."""
        import torch

        with torch.no_grad():
            return np.concatenate([self.net()(a.to(self.device), b.to(self.device)).reshape(-1)
                                   .cpu().numpy() for a, b in _batches(ref, test, self.scale)])


@METRICS.register("lpips")
class LPIPS(DeepMetric):
    """LPIPS v0.1 with the VGG backbone (lower is better)."""

    name = "lpips"
    bounds = (0.0, math.inf)
    higher_is_better = False
    scale = "pm1"

    def unavailable_reason(self):
        try:
            import lpips  # noqa: F401
        except ImportError:
            return "needs the lpips package: pip install 'lgvsc[hf]'"
        return None if find_vgg16() else _vgg_reason()

    def weights(self):
        return find_vgg16().resolve()

    def build(self):
        import lpips

        with warnings.catch_warnings():  # lpips calls torchvision's deprecated pretrained=
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
        feats = _vgg16_features().features
        for sl in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4,
                   model.net.slice5):
            for name, mod in sl.named_children():
                mod.load_state_dict(feats[int(name)].state_dict())
        return model



@METRICS.register("dists")
class DISTS(DeepMetric):
    """DISTS (Ding et al. 2020; DISTS_pytorch), lower is better."""

    name = "dists"
    bounds = (0.0, 1.0)
    higher_is_better = False

    def unavailable_reason(self):
        try:
            import DISTS_pytorch  # noqa: F401
        except ImportError:
            return "needs DISTS_pytorch: pip install 'lgvsc[hf]'"
        return None if find_vgg16() else _vgg_reason()

    def weights(self):
        return find_vgg16().resolve()

    def build(self):
        from DISTS_pytorch import DISTS_pt

        # DISTS builds torchvision's pretrained vgg16 (a download); hand it the local one
        local = SimpleNamespace(vgg16=lambda *a, **k: _vgg16_features())
        with mock.patch.object(DISTS_pt, "models", local):
            return DISTS_pt.DISTS()



def find_clip() -> str | None:
    env = os.environ.get("LGVSC_CLIP")
    if env:
        return env if (Path(env) / "config.json").is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(CLIP_REPO, "config.json")
    return CLIP_REPO if isinstance(hit, str) else None


@METRICS.register("clip")
class CLIPScore(DeepMetric):
    """CLIP image-image similarity (cos + 1) / 2 per frame pair."""

    name = "clip"
    bounds = (0.0, 1.0)

    def unavailable_reason(self):
        try:
            import transformers  # noqa: F401
        except ImportError:
            return "needs transformers: pip install 'lgvsc[hf]'"
        if find_clip() is None:
            where = os.environ.get("LGVSC_CLIP") or f"the Hugging Face cache ({CLIP_REPO})"
            return f"CLIP weights not found in {where} (set LGVSC_CLIP to a CLIPModel folder)"
        return None

    def weights(self):
        from ..semantic.model_files import model_folder

        return model_folder(find_clip(), "LGVSC_CLIP")[0].resolve()

    def build(self):
        """A :class:`_CLIPPair`: the model and its image processor."""
        from transformers import CLIPImageProcessor, CLIPModel

        src = str(self.weights())
        return _CLIPPair(CLIPModel.from_pretrained(src, local_files_only=True),
                         CLIPImageProcessor.from_pretrained(src, local_files_only=True))

    def frame_scores(self, ref, test):
        import torch

        pair = self.net()
        model, proc = pair.model, pair.processor
        out = []
        with torch.no_grad():
            for i in range(0, len(ref), BATCH):
                feats = []
                for x in (ref[i:i + BATCH], test[i:i + BATCH]):
                    px = proc(images=list(x), return_tensors="pt")["pixel_values"]
                    f = model.get_image_features(pixel_values=px.to(self.device))
                    f = getattr(f, "pooler_output", f)
                    feats.append(torch.nn.functional.normalize(f, dim=-1))
                out.append(((feats[0] * feats[1]).sum(-1) + 1).div(2).cpu().numpy())
        return np.concatenate(out)


class _CLIPPair:
    """CLIP's model and image processor, cached as one value (``.to`` / ``.eval``
    act on the model)."""

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def to(self, device):
        self.model = self.model.to(device)
        return self

    def eval(self):
        self.model.eval()
        return self


def deep_model_info(metric: Metric) -> list[ModelInfo]:
    """The models ``metric`` loads: :meth:`DeepMetric.model_info`, none for the others."""
    return metric.model_info() if isinstance(metric, DeepMetric) else []
