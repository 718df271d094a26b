"""``diffusers``: keyframe-conditioned video diffusion from a local diffusers pipeline.

Three pipeline families, picked from ``model_index.json``'s ``_class_name``
(``pipeline="auto"``) or named:

* ``ltx`` -> ``LTXConditionPipeline`` (also loads ``LTXPipeline`` checkpoints):
  ``LTXVideoCondition`` images at frame 0 and ``last_index``; frame counts
  t*k+1 with t the VAE temporal ratio (8 for real LTX-Video). LTX-Video 0.9.0 /
  0.9.1 folders (``LTXPipeline``, scheduler ``use_dynamic_shifting: true``) get
  the schedule ``LTXPipeline`` computes for them (``mu`` from the video's latent
  sequence length, :func:`ltx_dynamic_timesteps`), which ``LTXConditionPipeline``
  itself never passes; 0.9.5 and later need nothing. Text-to-video
  (:meth:`DiffusersWorldModel.generate_from_text`) runs ``LTXPipeline`` on the
  same loaded components.
* ``wan-flf2v`` -> ``WanImageToVideoPipeline``: ``image`` (first) and
  ``last_image`` (last frame only); frame counts 4k+1. Folders whose
  ``model_index.json`` sets ``expand_timesteps: true`` (Wan 2.2 TI2V style)
  ignore ``last_image`` in diffusers and are refused (:func:`check_last_image`).
* ``wan-vace`` -> ``WanVACEPipeline``: a ``video`` holding the keyframes at 0
  and ``last_index`` (other frames gray) and a ``mask`` (black = keep, white =
  generate); frame counts 4k+1.

One loaded pipeline per process: the pipeline loads through the process's
:func:`~lgvsc.semantic.model_cache.model_cache` under
``ModelKey("diffusers:<PipelineClass>", <absolute folder>, <dtype>, <device>,
(("offload", ...),))``, so two schemes naming the same folder, dtype, device and
offload share one copy. Building a :class:`DiffusersWorldModel` loads nothing (its
frame-count and size factors and call defaults come from the folder's config
files); the first :meth:`~DiffusersWorldModel.generate` loads.
:meth:`DiffusersWorldModel.model_info` says what will load and its memory
(safetensors headers only).

The prompt is :attr:`SegmentRequest.prompt` (caption + motion score text, as
the authors prompt Open-Sora). Prompt embeddings are cached: every text
(captions, and the negative prompt once) is encoded with the pipeline's own
``encode_prompt`` the first time it is seen, and the tensors are passed back
through ``prompt_embeds`` / ``negative_prompt_embeds`` (LTX also
``prompt_attention_mask`` / ``negative_prompt_attention_mask``). All three
pipelines accept these arguments, so with a cache hit the text encoder does not
run at all. The cache is a small LRU keyed by ``(text, max_sequence_length)``.

Nothing is downloaded: the pipeline loads from a local directory with
``local_files_only=True``. diffusers is imported lazily.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...link.registry import bound_params
from ..model_cache import ModelInfo, ModelKey, estimate_bytes, model_cache
from ..vlm_backend import key_device, key_dtype, resolve_device, resolve_dtype
from . import WORLD_MODELS, SegmentRequest, WorldModel

#: pipeline name -> diffusers class loaded for it
PIPELINES = {"ltx": "LTXConditionPipeline", "wan-flf2v": "WanImageToVideoPipeline",
             "wan-vace": "WanVACEPipeline"}
#: model_index.json ``_class_name`` -> pipeline name (``pipeline="auto"``)
CLASS_TO_PIPELINE = {"LTXConditionPipeline": "ltx", "LTXPipeline": "ltx",
                     "LTXImageToVideoPipeline": "ltx", "WanImageToVideoPipeline": "wan-flf2v",
                     "WanVACEPipeline": "wan-vace"}
#: pipeline name -> the ``_class_name`` values of folders it loads
PIPELINE_CLASSES = {kind: tuple(sorted(c for c, k in CLASS_TO_PIPELINE.items() if k == kind))
                    for kind in PIPELINES}
#: components each pipeline's ``__init__`` requires (model_index.json entries); a tuple
#: inside is "one of" (Wan: transformer or transformer_2)
REQUIRED_COMPONENTS = {"ltx": ("scheduler", "vae", "text_encoder", "tokenizer", "transformer"),
                       "wan-flf2v": ("tokenizer", "text_encoder", "vae", "scheduler",
                                     ("transformer", "transformer_2")),
                       "wan-vace": ("tokenizer", "text_encoder", "vae", "scheduler",
                                    ("transformer", "transformer_2"))}
#: the height/width multiple each pipeline's ``check_inputs`` insists on
MIN_MULTIPLE = {"ltx": 32, "wan-flf2v": 16, "wan-vace": 16}
#: gray value of the frames VACE generates (the diffusers FLF2V example uses 128)
VACE_FILL = 128
CACHE_SIZE = 64
#: ``offload:`` values -> the diffusers method that sets them up (None: ``pipe.to(device)``)
OFFLOADS = {"none": None, "model": "enable_model_cpu_offload",
            "sequential": "enable_sequential_cpu_offload"}
#: Wan components the diffusers Wan examples keep in float32
WAN_FLOAT32 = ("vae", "image_encoder")


def detect_pipeline(path: Path) -> str:
    """Pipeline name for the ``_class_name`` in ``path/model_index.json``."""
    cls = json.loads((path / "model_index.json").read_text()).get("_class_name")
    if cls not in CLASS_TO_PIPELINE:
        raise ValueError(f"pipeline class {cls!r} in {str(path)!r} is not supported; supported: "
                         f"{', '.join(sorted(CLASS_TO_PIPELINE))}")
    return CLASS_TO_PIPELINE[cls]


def check_path(path) -> Path:
    """``path`` as a local pipeline directory (one holding ``model_index.json``)."""
    p = Path(str(path)).expanduser()
    if not (p / "model_index.json").is_file():
        raise ValueError(f"path {str(path)!r} is not a local diffusers pipeline directory "
                         "(no model_index.json); nothing is downloaded")
    return p


def _component_problem(folder: Path, library: str, cls: str) -> str | None:
    """What a component subfolder lacks, or None."""
    from ..model_files import has_tokenizer, weight_files

    if not folder.is_dir():
        return "has no folder"
    if cls.endswith("Scheduler"):
        return None if (folder / "scheduler_config.json").is_file() else \
            "folder has no scheduler_config.json"
    if "Tokenizer" in cls:
        return None if has_tokenizer(folder) else "folder has no tokenizer files"
    if cls.endswith(("ImageProcessor", "FeatureExtractor", "Processor")):
        return None if (folder / "preprocessor_config.json").is_file() else \
            "folder has no preprocessor_config.json"
    if not (folder / "config.json").is_file():
        return "folder has no config.json"
    if not weight_files(folder):
        return "folder has no weight files (*.safetensors, *.bin or a *.index.json)"
    return None


def check_pipeline_folder(path, pipeline: str = "auto", key: str = "path") -> str:
    """Check a diffusers pipeline folder's layout without loading it; returns the
    pipeline name (``ltx`` | ``wan-flf2v`` | ``wan-vace``). ValueError ``"<key>: ..."``
    (or ``"pipeline: ..."`` when the folder holds another pipeline than the one named)."""
    from ..model_files import cached_file, describe, read_json

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ValueError(f"{key}: must be a local diffusers pipeline folder, got {path!r}")
    text = str(path)
    p = Path(text).expanduser()
    if not p.exists():
        hit = cached_file(text, "model_index.json")
        extra = (f"; the Hugging Face cache has it at {str(hit.parent)!r}, give that folder"
                 if hit is not None else "")
        raise ValueError(f"{key}: {text!r} is not a local folder (the diffusers world model "
                         f"loads a local pipeline folder only; nothing is downloaded){extra}")
    if not (p.is_dir() and (p / "model_index.json").is_file()):
        raise ValueError(f"{key}: {text!r} has no model_index.json (not a diffusers pipeline "
                         f"folder; {describe(p)})")
    index = read_json(p / "model_index.json", key, f"{text}/model_index.json")
    cls = index.get("_class_name")
    if pipeline == "auto":
        if cls not in CLASS_TO_PIPELINE:
            raise ValueError(f"{key}: {text!r} holds pipeline class {cls!r}, which is not "
                             f"supported; supported: {', '.join(sorted(CLASS_TO_PIPELINE))}")
        kind = CLASS_TO_PIPELINE[cls]
    else:
        kind = pipeline
        if cls not in PIPELINE_CLASSES[kind]:
            raise ValueError(f"pipeline: {kind!r} loads a {' or '.join(PIPELINE_CLASSES[kind])} "
                             f"folder; {text!r} holds {cls!r} (model_index.json _class_name)")
    present = index_components(index)
    for name, (library, cname) in present.items():
        problem = _component_problem(p / name, library, cname)
        if problem:
            raise ValueError(f"{key}: {text!r} is incomplete: component {name!r} ({library} "
                             f"{cname}) {problem}")
    for need in REQUIRED_COMPONENTS[kind]:
        options = need if isinstance(need, tuple) else (need,)
        if not any(o in present for o in options):
            raise ValueError(f"{key}: {text!r} lacks component {' or '.join(map(repr, options))} "
                             f"that {PIPELINES[kind]} needs (model_index.json)")
    check_last_image(index, kind, text, key)
    return kind


def index_components(index: dict) -> dict[str, tuple[str, str]]:
    """``{name: (library, class)}`` of the components a ``model_index.json`` lists
    (entries set to ``[null, null]`` left out)."""
    out = {}
    for name, value in index.items():
        if name.startswith("_") or not (isinstance(value, list) and len(value) == 2):
            continue
        library, cname = value
        if library is not None and cname is not None:
            out[name] = (str(library), str(cname))
    return out


def check_last_image(index: dict, kind: str, shown: str, key: str = "path") -> None:
    """Refuse first/last-frame mode for a Wan folder whose ``model_index.json`` sets
    ``expand_timesteps: true`` (Wan 2.2 TI2V style): diffusers'
    ``WanImageToVideoPipeline.prepare_latents`` then conditions on ``image`` alone and
    drops ``last_image`` without a word, so a segment would never land on its last
    keyframe. ValueError ``"<key>: ..."`` naming what works instead."""
    if kind == "wan-flf2v" and index.get("expand_timesteps"):
        raise ValueError(
            f"{key}: {shown!r} sets expand_timesteps: true in model_index.json (Wan 2.2 TI2V "
            "style), for which diffusers' WanImageToVideoPipeline ignores last_image, so "
            "first/last-frame mode cannot land on the last keyframe; use a first/last-frame "
            "checkpoint (Wan2.1-FLF2V-14B-720P-diffusers), a VACE pipeline (pipeline: "
            "wan-vace) or an LTX pipeline")


def round_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(H, W) rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    return tuple(max(multiple, int(math.floor(s / multiple + 0.5)) * multiple) for s in size)


def to_pil(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """uint8 [H, W, 3] -> RGB PIL image of ``size`` = (H, W) (bicubic when resized)."""
    img = Image.fromarray(frame)
    return img if img.size == (size[1], size[0]) else img.resize((size[1], size[0]), Image.BICUBIC)


def vace_inputs(first: Image.Image, last: Image.Image, length: int,
                last_index: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """VACE conditioning video and mask, each ``length`` PIL images.

    Keyframes at 0 and ``last_index`` with a black (0 = keep) mask; every other
    frame is gray (:data:`VACE_FILL`) with a white (255 = generate) mask.
    """
    gray = Image.new("RGB", first.size, (VACE_FILL,) * 3)
    keep, gen = Image.new("L", first.size, 0), Image.new("L", first.size, 255)
    video = [first if i == 0 else last if i == last_index else gray for i in range(length)]
    mask = [keep if i in (0, last_index) else gen for i in range(length)]
    return video, mask


def frames_to_uint8(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float [L, h, w, 3] in [0, 1] -> uint8 [L, H, W, 3] at ``size`` = (H, W)."""
    out = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if out.shape[1:3] == tuple(size):
        return out
    return np.stack([np.asarray(to_pil(f, size)) for f in out])


def check_frame(name: str, frame, shape=None) -> np.ndarray:
    """A keyframe must be uint8 [H, W, 3] (and of ``shape`` when given)."""
    if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
            and frame.shape[2] == 3):
        raise ValueError(f"request.{name} must be uint8 [H, W, 3], got "
                         f"{getattr(frame, 'dtype', type(frame).__name__)} "
                         f"{getattr(frame, 'shape', '')}")
    if shape is not None and frame.shape != shape:
        raise ValueError(f"request.{name} has shape {frame.shape}, request.first {shape}")
    return frame


def check_call(request: SegmentRequest, length, last_index, valid_length, anywhere: bool,
               name: str) -> tuple[int, int]:
    """Validate a ``generate`` call; returns ``(length, last_index)`` as ints
    (``last_index`` defaults to ``length - 1``).

    ``length`` must be 1, 2 (answered without the model) or ``valid_length(length)``;
    ``last_index`` in [1, length - 1], and ``length - 1`` unless the model places
    keyframes ``anywhere``.
    """
    first = check_frame("first", request.first)
    if request.last is not None:
        check_frame("last", request.last, first.shape)
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    length = int(length)
    if length > 2 and length != valid_length(length):
        raise ValueError(f"length {length} is not a frame count {name} generates; use "
                         f"valid_length({length}) = {valid_length(length)}")
    last_index = length - 1 if last_index is None else int(last_index)
    if not min(1, length - 1) <= last_index <= length - 1:
        raise ValueError(f"last_index must be in [{min(1, length - 1)}, {length - 1}], "
                         f"got {last_index}")
    if last_index != length - 1 and not anywhere:
        raise ValueError(f"{name} places the last keyframe at the last frame only; "
                         f"got last_index {last_index} for length {length}")
    return length, last_index


def trivial_frames(request: SegmentRequest, length: int, generator) -> np.ndarray | None:
    """Frames that need no model (1-frame segment, or just the two keyframes), else
    None after checking that a real call has its ``torch.Generator``."""
    if length == 1 or request.last is None:
        return np.repeat(request.first[None], length, axis=0)
    if length == 2:
        return np.stack([request.first, request.last])
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return None


# -- what the folder's config files say (no weights loaded) -----------------------------
def component_config(path: Path, name: str, cname: str) -> dict:
    """Component ``name``'s ``config.json`` completed with the defaults of diffusers'
    ``cname.__init__`` (what the loaded component would have)."""
    import diffusers

    params = inspect.signature(getattr(diffusers, cname).__init__).parameters
    out = {k: v.default for k, v in params.items() if v.default is not inspect.Parameter.empty}
    cfg = json.loads((path / name / "config.json").read_text())
    out.update({k: v for k, v in cfg.items() if v is not None})
    return out


def folder_factors(path: Path, kind: str) -> tuple[int, int]:
    """(VAE temporal ratio, height/width multiple) of the pipeline in ``path``, as the
    loaded pipeline computes them (``vae_temporal_compression_ratio``, ...), from the
    ``vae`` and ``transformer`` configs."""
    comps = index_components(json.loads((path / "model_index.json").read_text()))
    vae = component_config(path, "vae", comps["vae"][1])
    tname = "transformer" if "transformer" in comps else "transformer_2"
    transformer = component_config(path, tname, comps[tname][1])
    if kind == "ltx":
        scaling = sum(bool(v) for v in vae["spatio_temporal_scaling"])
        spatial = vae.get("spatial_compression_ratio") or vae["patch_size"] * 2 ** scaling
        temporal = vae.get("temporal_compression_ratio") or vae["patch_size_t"] * 2 ** scaling
        return int(temporal), math.lcm(MIN_MULTIPLE[kind], int(spatial) * transformer["patch_size"])
    spatial = int(vae["scale_factor_spatial"]) * int(transformer["patch_size"][1])
    return int(vae["scale_factor_temporal"]), math.lcm(MIN_MULTIPLE[kind], spatial)


def call_default(pipeline_class: str, name: str):
    """Default of diffusers ``pipeline_class.__call__``'s keyword ``name``."""
    import diffusers

    return inspect.signature(getattr(diffusers, pipeline_class).__call__).parameters[name].default


def version_limits(path) -> list[str]:
    """What this project does about the version of the pipeline in ``path`` (one line each;
    configs only): LTX dynamic shifting, Wan ``expand_timesteps``."""
    p = Path(str(path)).expanduser()
    index = json.loads((p / "model_index.json").read_text())
    kind = CLASS_TO_PIPELINE.get(index.get("_class_name"))
    out = []
    if kind == "ltx" and (p / "scheduler" / "scheduler_config.json").is_file():
        sched = json.loads((p / "scheduler" / "scheduler_config.json").read_text())
        if sched.get("use_dynamic_shifting"):
            out.append("LTX-Video 0.9.0/0.9.1 style scheduler (use_dynamic_shifting): keyframe "
                       "segments use LTXPipeline's shifted schedule (mu from the latent size)")
    if kind == "wan-flf2v" and index.get("expand_timesteps"):
        out.append("Wan expand_timesteps (2.2 TI2V style): last_image is ignored by diffusers; "
                   "first/last-frame mode refused")
    return out


# -- LTX dynamic shifting (LTX-Video 0.9.0 / 0.9.1) ---------------------------------------
def ltx_dynamic_timesteps(scheduler, steps: int, frames: int, height: int, width: int,
                          temporal: int, spatial: int) -> list[float] | None:
    """The timesteps diffusers' ``LTXPipeline`` samples with for this video when
    ``scheduler`` shifts dynamically, else None.

    As ``LTXPipeline.__call__``: ``mu = calculate_shift(F' * H' * W', base_image_seq_len,
    max_image_seq_len, base_shift, max_shift)`` over the latent video
    (F' = (frames - 1) // temporal + 1, H' = height // spatial, W' = width // spatial)
    and ``set_timesteps(sigmas=linspace(1, 1/steps, steps), mu=mu)`` on a copy of the
    scheduler. ``steps`` values, in [0, 1000], decreasing.
    """
    cfg = scheduler.config
    if not cfg.get("use_dynamic_shifting"):
        return None
    from diffusers.pipelines.ltx.pipeline_ltx import calculate_shift

    seq = ((frames - 1) // temporal + 1) * (height // spatial) * (width // spatial)
    mu = calculate_shift(seq, cfg.get("base_image_seq_len", 256),
                         cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                         cfg.get("max_shift", 1.15))
    probe = type(scheduler).from_config(cfg)
    probe.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    return [float(t) for t in probe.timesteps]


def unshifted(scheduler):
    """A copy of ``scheduler`` that takes given timesteps as they are (no dynamic or
    static shift; ``shift_terminal`` stretching of an already stretched schedule is the
    identity), for ``LTXConditionPipeline``, which passes no ``mu``."""
    return type(scheduler).from_config(scheduler.config, use_dynamic_shifting=False, shift=1.0)


@contextmanager
def scheduler_swapped(pipe, scheduler):
    """``pipe.scheduler`` is ``scheduler`` inside the block (restored after)."""
    before = pipe.scheduler
    pipe.scheduler = scheduler
    try:
        yield pipe
    finally:
        pipe.scheduler = before


# -- cache keys ---------------------------------------------------------------------------
def pipeline_info(path: Path, kind: str, dtype: str, device: str, offload: str) -> ModelInfo:
    """The cache key and weight memory of pipeline ``kind`` in ``path`` (absolute)."""
    options = () if offload == "none" else (("offload", offload),)
    key = ModelKey(f"diffusers:{PIPELINES[kind]}", str(path), dtype, device, options)
    sizes = {}
    for name, (_, cname) in index_components(json.loads((path / "model_index.json")
                                                         .read_text())).items():
        if (path / name / "config.json").is_file() and not cname.endswith(
                ("Scheduler", "Processor", "FeatureExtractor")):
            wdtype = "float32" if kind.startswith("wan") and name in WAN_FLOAT32 else dtype
            sizes[name] = estimate_bytes(path / name, wdtype)
    total = None if any(v is None for v in sizes.values()) else sum(sizes.values())
    parts = ", ".join(f"{n} {'?' if b is None else f'{b / 2**30:.1f} GiB'}"
                      for n, b in sizes.items())
    where = {"none": "all on the device", "model": "in CPU memory, one component at a time on "
             "the device", "sequential": "in CPU memory, streamed layer by layer"}[offload]
    return ModelInfo(key, total, f"{parts}; {where}")


def resolve_offload(offload, cpu_offload) -> str:
    """``offload`` with the ``cpu_offload: true`` alias (= ``offload: model``) folded in."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload: must be one of {', '.join(OFFLOADS)}, got {offload!r}")
    if not isinstance(cpu_offload, bool):
        raise ValueError(f"cpu_offload: must be true or false (an alias of offload: model), "
                         f"got {cpu_offload!r}")
    if cpu_offload and offload not in ("none", "model"):
        raise ValueError(f"cpu_offload: true means offload: model, but offload is {offload!r}; "
                         "give offload alone")
    return "model" if cpu_offload else offload


def check_offload(offload: str, cpu_offload: bool, device: str) -> None:
    """Offloading needs CUDA (and accelerate); ValueError naming the field."""
    if offload == "none" or device == "auto":  # "auto": __init__ checks the resolved device
        return
    field = "cpu_offload: True" if cpu_offload else f"offload: {offload!r}"
    if not device.startswith("cuda"):
        raise ValueError(f"{field} needs a CUDA device, got device {device!r}")
    if importlib.util.find_spec("accelerate") is None:
        raise ValueError(f"{field} needs the accelerate package (pip install accelerate)")


@WORLD_MODELS.register("diffusers", weights="a local diffusers pipeline folder (path:)",
                        packages=("diffusers", "transformers"))
class DiffusersWorldModel(WorldModel):
    """A segment from its two keyframes with an LTX / Wan FLF2V / Wan VACE pipeline.

    Lazy: building one reads the folder's config files only; the pipeline loads on
    first use (:attr:`pipe`), once per process for each (folder, pipeline, dtype,
    device, offload) (:func:`~lgvsc.semantic.model_cache.model_cache`).

    :param path: local diffusers pipeline directory (``model_index.json``).
    :param pipeline: ``"auto"`` (from ``model_index.json``) | ``"ltx"`` |
        ``"wan-flf2v"`` | ``"wan-vace"``.
    :param steps: denoising steps.
    :param guidance: classifier-free guidance scale; None = the pipeline's
        default (LTX 3.0, Wan 5.0). Guidance <= 1 turns CFG (and the negative
        prompt) off.
    :param resolution: (H, W) to generate at, multiples of :attr:`multiple`;
        None = the keyframes' size rounded to the nearest multiple. Output is
        always at the keyframes' size (bicubic resize when they differ).
    :param dtype: ``"auto"`` (bfloat16 on cuda, float32 on cpu) | ``"bfloat16"``
        | ``"float16"`` | ``"float32"``. Wan's VAE and image encoder stay in
        float32 (as in the diffusers Wan examples).
    :param device: ``"auto"`` | ``"cpu"`` | ``"cuda[:N]"``.
    :param offload: ``"none"`` (the whole pipeline on ``device``) | ``"model"``
        (``enable_model_cpu_offload``: weights in CPU memory, each component moved
        to the GPU while it runs) | ``"sequential"`` (``enable_sequential_cpu_offload``:
        layer by layer, least GPU memory, slowest). Offloading needs CUDA.
    :param cpu_offload: ``True`` is an alias of ``offload="model"``.
    :param negative_prompt: the negative prompt (used when CFG is on).
    :param max_sequence_length: text tokens; None = the pipeline's default
        (LTX 256, Wan 512).
    """

    def __init__(self, path, pipeline: str = "auto", steps: int = 30, guidance: float | None = None,
                 resolution: tuple[int, int] | None = None, dtype: str = "auto",
                 device: str = "auto", offload: str = "none", cpu_offload: bool = False,
                 negative_prompt: str = "", max_sequence_length: int | None = None):
        self._check_settings(pipeline, steps, guidance, resolution, negative_prompt,
                             max_sequence_length)
        self.offload = resolve_offload(offload, cpu_offload)
        self.path = check_path(path).resolve()
        self.kind = detect_pipeline(self.path) if pipeline == "auto" else pipeline
        check_last_image(json.loads((self.path / "model_index.json").read_text()), self.kind,
                         str(path))
        if self.kind.startswith("wan") and importlib.util.find_spec("ftfy") is None:
            raise ValueError(f"pipeline {self.kind!r} needs the ftfy package (pip install ftfy)")
        self.device = resolve_device(device)
        check_offload(self.offload, cpu_offload, str(self.device))
        self.dtype = resolve_dtype(dtype, self.device)
        self.steps, self.negative_prompt = steps, negative_prompt
        self.places_keyframes_anywhere = self.kind != "wan-flf2v"
        cls_name = PIPELINES[self.kind]
        self.guidance = float(call_default(cls_name, "guidance_scale") if guidance is None
                              else guidance)
        self.max_sequence_length = max_sequence_length or call_default(cls_name,
                                                                       "max_sequence_length")
        self.temporal, self.multiple = folder_factors(self.path, self.kind)
        self.resolution = self._check_resolution(resolution)
        self.info = pipeline_info(self.path, self.kind, str(self.dtype).removeprefix("torch."),
                                  str(self.device), self.offload)
        self._cache: OrderedDict = OrderedDict()

    @staticmethod
    def _check_settings(pipeline, steps, guidance, resolution, negative_prompt,
                        max_sequence_length):
        if pipeline != "auto" and pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be 'auto' or one of {', '.join(PIPELINES)}, "
                             f"got {pipeline!r}")
        for name, v in (("steps", steps), ("max_sequence_length", max_sequence_length)):
            if (name == "steps" or v is not None) and (
                    not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if guidance is not None and (not isinstance(guidance, (int, float)) or guidance < 0):
            raise ValueError(f"guidance must be None or a number >= 0, got {guidance!r}")
        if resolution is not None and not (
                isinstance(resolution, (tuple, list)) and len(resolution) == 2
                and all(isinstance(v, int) and v > 0 for v in resolution)):
            raise ValueError(f"resolution must be None or (H, W) positive integers, "
                             f"got {resolution!r}")
        if not isinstance(negative_prompt, str):
            raise ValueError(f"negative_prompt must be a string, got {negative_prompt!r}")

    @classmethod
    def check_weights(cls, **params) -> None:
        """The spec's settings and the pipeline folder's layout, without loading it.

        ``path`` must be a local folder with ``model_index.json`` whose
        ``_class_name`` is supported (and is one ``pipeline:`` loads, when named);
        every component it lists has its subfolder with what that kind of component
        needs (a model: ``config.json`` + weight files; a scheduler:
        ``scheduler_config.json``; a tokenizer: its files; an image processor:
        ``preprocessor_config.json``), and the pipeline's required components are
        there; a Wan first/last-frame folder must not set ``expand_timesteps``
        (:func:`check_last_image`). Also the settings ``__init__`` checks before
        loading, the device / dtype form, ``offload`` (or ``cpu_offload``) with a CPU
        device, Wan's ftfy package, and ``resolution`` against the pipeline's size
        multiple. ValueError naming the key (``"path: ..."``).
        """
        from ..model_files import check_device, check_dtype

        p = bound_params(cls, params)
        cls._check_settings(p["pipeline"], p["steps"], p["guidance"], p["resolution"],
                            p["negative_prompt"], p["max_sequence_length"])
        check_device(p["device"])
        check_dtype(p["dtype"])
        offload = resolve_offload(p["offload"], p["cpu_offload"])
        check_offload(offload, p["cpu_offload"], p["device"])
        kind = check_pipeline_folder(p["path"], p["pipeline"])
        if kind.startswith("wan") and importlib.util.find_spec("ftfy") is None:
            raise ValueError(f"pipeline: {kind!r} needs the ftfy package (pip install ftfy)")
        res, mult = p["resolution"], MIN_MULTIPLE[kind]
        if res is not None and any(v % mult for v in res):
            raise ValueError(f"resolution: {tuple(res)} must be multiples of {mult} for the "
                             f"{kind} pipeline")

    @classmethod
    def model_info(cls, **params) -> list[ModelInfo]:
        """The pipeline this spec loads: the same :class:`ModelKey` an instance uses, and
        the memory of its weights (every model component, the text encoder included)
        from the safetensors headers; nothing is loaded."""
        p = bound_params(cls, params)
        path = check_path(p["path"]).resolve()
        kind = detect_pipeline(path) if p["pipeline"] == "auto" else p["pipeline"]
        device = key_device(p["device"])
        offload = resolve_offload(p["offload"], p["cpu_offload"])
        return [pipeline_info(path, kind, key_dtype(p["dtype"], device), device, offload)]

    @property
    def pipe(self):
        """The loaded diffusers pipeline (loaded on first use, shared through the model
        cache; not held here, so releasing the cache frees it)."""
        return model_cache().get(self.info.key, self._load, self.info.bytes)

    def _load(self):
        """The diffusers pipeline, on :attr:`device` (or CPU-offloaded)."""
        import diffusers

        torch_dtype = self.dtype
        if self.kind.startswith("wan"):
            torch_dtype = {"default": self.dtype, **{n: torch.float32 for n in WAN_FLOAT32}}
        pipe = getattr(diffusers, PIPELINES[self.kind]).from_pretrained(
            str(self.path), dtype=torch_dtype, local_files_only=True)
        method = OFFLOADS[self.offload]
        if method is None:
            pipe.to(self.device)
        else:
            getattr(pipe, method)(device=self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _check_resolution(self, resolution):
        if resolution is not None and any(v % self.multiple for v in resolution):
            raise ValueError(f"resolution {tuple(resolution)} must be multiples of "
                             f"{self.multiple} for this {self.kind} pipeline")
        return None if resolution is None else tuple(resolution)

    def valid_length(self, n: int) -> int:
        """Smallest ``t*k + 1 >= n`` (t = VAE temporal ratio: LTX 8, Wan 4); 1 for n <= 1.

        The frame counts this model generates are exactly ``1, t+1, 2t+1, ...``;
        :meth:`generate` also takes 2 (the two keyframes, no model run)."""
        if n <= 1:
            return 1
        return 1 + math.ceil((n - 1) / self.temporal) * self.temporal

    # -- prompt embeddings -------------------------------------------------

    def _embed(self, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(embeds [1, S, D], attention mask [1, S] or None (Wan)), cached per text."""
        key = (text, self.max_sequence_length)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pipe = self.pipe
        with torch.no_grad():
            out = pipe.encode_prompt(prompt=text, do_classifier_free_guidance=False,
                                     max_sequence_length=self.max_sequence_length,
                                     device=pipe._execution_device)
        value = (out[0], out[1] if self.kind == "ltx" else None)
        self._cache[key] = value
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    def prompt_kwargs(self, prompt: str) -> dict:
        """``prompt_embeds`` (+ negative, + LTX attention masks) for the pipeline call."""
        embeds, mask = self._embed(prompt)
        kw = {"prompt_embeds": embeds}
        if self.kind == "ltx":
            kw["prompt_attention_mask"] = mask
        if self.guidance > 1.0:
            neg, neg_mask = self._embed(self.negative_prompt)
            kw["negative_prompt_embeds"] = neg
            if self.kind == "ltx":
                kw["negative_prompt_attention_mask"] = neg_mask
        return kw

    # -- generation --------------------------------------------------------

    def target_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) the pipeline generates at for keyframes of ``size``."""
        return self.resolution or round_size(size, self.multiple)

    def _keyframe_kwargs(self, first, last, length: int, last_index: int) -> dict:
        """The pipeline's keyframe arguments (PIL images at the generation size)."""
        if self.kind == "ltx":
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            return {"conditions": [LTXVideoCondition(image=first, frame_index=0),
                                   LTXVideoCondition(image=last, frame_index=last_index)]}
        if self.kind == "wan-flf2v":
            return {"image": first, "last_image": last}
        video, mask = vace_inputs(first, last, length, last_index)
        return {"video": video, "mask": mask}

    def generate(self, request: SegmentRequest, length: int, last_index: int | None = None,
                 generator: torch.Generator | None = None) -> np.ndarray:
        """uint8 [length, H, W, 3] at the keyframes' size.

        ``length`` must be 1, 2 or a :meth:`valid_length`. Without running (or
        loading) the model: length 1 or ``request.last`` None (a one-frame segment)
        returns the first keyframe (repeated ``length`` times, as ``interp`` does),
        length 2 returns ``[first, last]``.
        The pipeline conditions on ``request.first`` at frame 0 and ``request.last``
        at ``last_index``; the generated keyframe frames approximate them (they
        are not pasted back). ``generator``: a ``torch.Generator`` (the seed).
        """
        length, last_index = check_call(request, length, last_index, self.valid_length,
                                        self.places_keyframes_anywhere, self.kind)
        trivial = trivial_frames(request, length, generator)
        return trivial if trivial is not None else self._run(request, length, last_index, generator)

    @staticmethod
    def text_to_video_reason(path, pipeline: str = "auto") -> str | None:
        """None if this pipeline can make video from text alone (LTX), else why not."""
        try:
            kind = pipeline if pipeline != "auto" else detect_pipeline(check_path(path))
        except ValueError as e:
            return str(e)
        return None if kind == "ltx" else f"the {kind} pipeline needs keyframes (use an LTX pipeline)"

    def text_pipe(self):
        """``LTXPipeline`` on the loaded pipeline's components (no second load, nothing
        copied): text-to-video as diffusers' LTX text-to-video pipeline runs it (it
        computes the dynamic-shift ``mu`` itself)."""
        import diffusers

        pipe = diffusers.LTXPipeline(**self.pipe.components)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def generate_from_text(self, text: str, frames: int, size: tuple[int, int],
                           generator: torch.Generator) -> np.ndarray:
        """Text-to-video with ``LTXPipeline``: uint8 [frames, H, W, 3] at ``size``; the
        model's valid length is generated and resampled in time to ``frames``."""
        reason = self.text_to_video_reason(self.path, self.kind)
        if reason:
            raise ValueError(reason)
        h, w = self.target_size(size)
        n = self.valid_length(max(frames, 2))
        kwargs = self.prompt_kwargs(text)
        out = self.text_pipe()(**kwargs, height=h, width=w, num_frames=n,
                               num_inference_steps=self.steps, guidance_scale=self.guidance,
                               generator=generator, output_type="np")
        if self.offload == "model":
            self.pipe.maybe_free_model_hooks()  # the offload hooks belong to the loaded pipe
        video = frames_to_uint8(np.asarray(out.frames[0]), size)
        idx = np.rint(np.linspace(0, len(video) - 1, frames)).astype(int)
        return video[idx]

    def ltx_timesteps(self, length: int, height: int, width: int) -> list[float] | None:
        """LTXPipeline's schedule for a dynamic-shift (0.9.0 / 0.9.1) LTX folder, else None
        (:func:`ltx_dynamic_timesteps`)."""
        pipe = self.pipe
        return ltx_dynamic_timesteps(pipe.scheduler, self.steps, length, height, width,
                                     pipe.vae_temporal_compression_ratio,
                                     pipe.vae_spatial_compression_ratio)

    def _run(self, request: SegmentRequest, length: int, last_index: int,
             generator: torch.Generator) -> np.ndarray:
        """One pipeline call -> uint8 [length, H, W, 3] at the keyframes' size."""
        size = request.first.shape[:2]
        h, w = self.target_size(size)
        kwargs = self._keyframe_kwargs(to_pil(request.first, (h, w)), to_pil(request.last, (h, w)),
                                       length, last_index)
        kwargs.update(self.prompt_kwargs(request.prompt))
        pipe = self.pipe
        timesteps = self.ltx_timesteps(length, h, w) if self.kind == "ltx" else None
        swap = nullcontext()
        if timesteps is not None:  # LTX 0.9.0 / 0.9.1: LTXPipeline's shifted schedule, as given
            kwargs["timesteps"] = timesteps
            swap = scheduler_swapped(pipe, unshifted(pipe.scheduler))
        with swap:
            out = pipe(**kwargs, height=h, width=w, num_frames=length,
                       num_inference_steps=self.steps, guidance_scale=self.guidance,
                       generator=generator, output_type="np")
        frames = np.asarray(out.frames[0])
        if len(frames) != length:
            raise RuntimeError(f"{self.kind} pipeline returned {len(frames)} frames, "
                               f"asked for {length}")
        return frames_to_uint8(frames, size)
