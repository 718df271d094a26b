"""``diffusers``: keyframe-conditioned video diffusion from a local diffusers pipeline.

Three pipeline families, picked from ``model_index.json``'s ``_class_name``
(``pipeline="auto"``) or named:

* ``ltx`` -> ``LTXConditionPipeline`` (also loads ``LTXPipeline`` checkpoints):
  ``LTXVideoCondition`` images at frame 0 and ``last_index``; frame counts
  t*k+1 with t the VAE temporal ratio (8 for real LTX-Video).
* ``wan-flf2v`` -> ``WanImageToVideoPipeline``: ``image`` (first) and
  ``last_image`` (last frame only); frame counts 4k+1.
* ``wan-vace`` -> ``WanVACEPipeline``: a ``video`` holding the keyframes at 0
  and ``last_index`` (other frames gray) and a ``mask`` (black = keep, white =
  generate); frame counts 4k+1.

The prompt is :attr:`SegmentRequest.prompt` (caption + motion score text, as
the authors prompt Open-Sora). Prompt embeddings are cached: every text
(captions, and the negative prompt once) is encoded with the pipeline's own
``encode_prompt`` the first time it is seen, and the tensors are passed back
through ``prompt_embeds`` / ``negative_prompt_embeds`` (LTX also
``prompt_attention_mask`` / ``negative_prompt_attention_mask``). All three
pipelines accept these arguments, so with a cache hit the text encoder does not
run at all. The cache is a small LRU keyed by ``(text, max_sequence_length)``.

Nothing is downloaded: the pipeline loads from a local directory with
``local_files_only=True``. diffusers is imported lazily (in the constructor).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...link.registry import bound_params
from ..vlm_backend import resolve_device, resolve_dtype
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
    present = {}
    for name, value in index.items():
        if name.startswith("_") or not (isinstance(value, list) and len(value) == 2):
            continue
        library, cname = value
        if library is None or cname is None:
            continue
        present[name] = cname
        problem = _component_problem(p / name, str(library), str(cname))
        if problem:
            raise ValueError(f"{key}: {text!r} is incomplete: component {name!r} ({library} "
                             f"{cname}) {problem}")
    for need in REQUIRED_COMPONENTS[kind]:
        options = need if isinstance(need, tuple) else (need,)
        if not any(o in present for o in options):
            raise ValueError(f"{key}: {text!r} lacks component {' or '.join(map(repr, options))} "
                             f"that {PIPELINES[kind]} needs (model_index.json)")
    return kind


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


def call_default(pipe, name: str):
    """Default of ``pipe.__call__``'s keyword ``name``."""
    return inspect.signature(pipe.__call__).parameters[name].default


@WORLD_MODELS.register("diffusers", weights="a local diffusers pipeline folder (path:)",
                        packages=("diffusers", "transformers"))
class DiffusersWorldModel(WorldModel):
    """A segment from its two keyframes with an LTX / Wan FLF2V / Wan VACE pipeline.

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
    :param cpu_offload: ``enable_model_cpu_offload()`` (needs CUDA).
    :param negative_prompt: the negative prompt (used when CFG is on).
    :param max_sequence_length: text tokens; None = the pipeline's default
        (LTX 256, Wan 512).
    """

    def __init__(self, path, pipeline: str = "auto", steps: int = 30, guidance: float | None = None,
                 resolution: tuple[int, int] | None = None, dtype: str = "auto",
                 device: str = "auto", cpu_offload: bool = False, negative_prompt: str = "",
                 max_sequence_length: int | None = None):
        self._check_settings(pipeline, steps, guidance, resolution, cpu_offload, negative_prompt,
                             max_sequence_length)
        self.path = check_path(path)
        self.kind = detect_pipeline(self.path) if pipeline == "auto" else pipeline
        if self.kind.startswith("wan") and importlib.util.find_spec("ftfy") is None:
            raise ValueError(f"pipeline {self.kind!r} needs the ftfy package (pip install ftfy)")
        self.device = resolve_device(device)
        if cpu_offload and self.device.type != "cuda":
            raise ValueError("cpu_offload=True needs a CUDA device")
        self.dtype = resolve_dtype(dtype, self.device)
        self.steps, self.negative_prompt, self.cpu_offload = steps, negative_prompt, cpu_offload
        self.places_keyframes_anywhere = self.kind != "wan-flf2v"
        self.pipe = self._load()
        self.guidance = float(call_default(self.pipe, "guidance_scale") if guidance is None
                              else guidance)
        self.max_sequence_length = max_sequence_length or call_default(self.pipe,
                                                                       "max_sequence_length")
        self.temporal, self.multiple = self._factors()
        self.resolution = self._check_resolution(resolution)
        self._cache: OrderedDict = OrderedDict()

    @staticmethod
    def _check_settings(pipeline, steps, guidance, resolution, cpu_offload, negative_prompt,
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
        if not isinstance(cpu_offload, bool):
            raise ValueError(f"cpu_offload must be True or False, got {cpu_offload!r}")
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
        there. Also the settings ``__init__`` checks before loading, the device /
        dtype form, ``cpu_offload`` with a CPU device, Wan's ftfy package, and
        ``resolution`` against the pipeline's size multiple (the VAE's own factor is
        only known once loaded). ValueError naming the key (``"path: ..."``).
        """
        from ..model_files import check_device, check_dtype

        p = bound_params(cls, params)
        cls._check_settings(p["pipeline"], p["steps"], p["guidance"], p["resolution"],
                            p["cpu_offload"], p["negative_prompt"], p["max_sequence_length"])
        check_device(p["device"])
        check_dtype(p["dtype"])
        if p["cpu_offload"] and p["device"] == "cpu":
            raise ValueError("cpu_offload: True needs a CUDA device, got device 'cpu'")
        kind = check_pipeline_folder(p["path"], p["pipeline"])
        if kind.startswith("wan") and importlib.util.find_spec("ftfy") is None:
            raise ValueError(f"pipeline: {kind!r} needs the ftfy package (pip install ftfy)")
        res, mult = p["resolution"], MIN_MULTIPLE[kind]
        if res is not None and any(v % mult for v in res):
            raise ValueError(f"resolution: {tuple(res)} must be multiples of {mult} for the "
                             f"{kind} pipeline")

    def _load(self):
        """The diffusers pipeline, on :attr:`device` (or CPU-offloaded)."""
        import diffusers

        torch_dtype = self.dtype
        if self.kind.startswith("wan"):
            torch_dtype = {"default": self.dtype, "vae": torch.float32,
                           "image_encoder": torch.float32}
        pipe = getattr(diffusers, PIPELINES[self.kind]).from_pretrained(
            str(self.path), dtype=torch_dtype, local_files_only=True)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _factors(self) -> tuple[int, int]:
        """(VAE temporal ratio, height/width multiple) of the loaded pipeline."""
        p = self.pipe
        if self.kind == "ltx":
            spatial = p.vae_spatial_compression_ratio * p.transformer_spatial_patch_size
            return p.vae_temporal_compression_ratio, math.lcm(MIN_MULTIPLE["ltx"], spatial)
        transformer = p.transformer if p.transformer is not None else p.transformer_2
        spatial = p.vae_scale_factor_spatial * transformer.config.patch_size[1]
        return p.vae_scale_factor_temporal, math.lcm(MIN_MULTIPLE[self.kind], spatial)

    def _check_resolution(self, resolution):
        if resolution is not None and any(v % self.multiple for v in resolution):
            raise ValueError(f"resolution {tuple(resolution)} must be multiples of "
                             f"{self.multiple} for this {self.kind} pipeline")
        return None if resolution is None else tuple(resolution)

    def valid_length(self, n: int) -> int:
        """Smallest ``t*k + 1 >= n`` (t = VAE temporal ratio: LTX 8, Wan 4)."""
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
        with torch.no_grad():
            out = self.pipe.encode_prompt(prompt=text, do_classifier_free_guidance=False,
                                          max_sequence_length=self.max_sequence_length,
                                          device=self.pipe._execution_device)
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

        ``length`` must be 1, 2 or a :meth:`valid_length`. Without running the
        model: length 1 or ``request.last`` None (a one-frame segment) returns the
        first keyframe (repeated ``length`` times, as ``interp`` does), length 2
        returns ``[first, last]``.
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

    def generate_from_text(self, text: str, frames: int, size: tuple[int, int],
                           generator: torch.Generator) -> np.ndarray:
        """Text-to-video (LTX without conditions): uint8 [frames, H, W, 3] at ``size``;
        the model's valid length is generated and resampled in time to ``frames``."""
        reason = self.text_to_video_reason(self.path, self.kind)
        if reason:
            raise ValueError(reason)
        h, w = self.target_size(size)
        n = self.valid_length(max(frames, 2))
        out = self.pipe(**self.prompt_kwargs(text), height=h, width=w, num_frames=n,
                        num_inference_steps=self.steps, guidance_scale=self.guidance,
                        generator=generator, output_type="np")
        video = frames_to_uint8(np.asarray(out.frames[0]), size)
        idx = np.rint(np.linspace(0, len(video) - 1, frames)).astype(int)
        return video[idx]

    def _run(self, request: SegmentRequest, length: int, last_index: int,
             generator: torch.Generator) -> np.ndarray:
        """One pipeline call -> uint8 [length, H, W, 3] at the keyframes' size."""
        size = request.first.shape[:2]
        h, w = self.target_size(size)
        kwargs = self._keyframe_kwargs(to_pil(request.first, (h, w)), to_pil(request.last, (h, w)),
                                       length, last_index)
        kwargs.update(self.prompt_kwargs(request.prompt))
        out = self.pipe(**kwargs, height=h, width=w, num_frames=length,
                        num_inference_steps=self.steps, guidance_scale=self.guidance,
                        generator=generator, output_type="np")
        frames = np.asarray(out.frames[0])
        if len(frames) != length:
            raise RuntimeError(f"{self.kind} pipeline returned {len(frames)} frames, "
                               f"asked for {length}")
        return frames_to_uint8(frames, size)
