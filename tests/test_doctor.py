"""``lgvsc doctor`` on synthetic config folders (no real weights), and ``lgvsc doctor --gpu``
(the tiny real-tier check) on the CPU (issue 12, section 4)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from lgvsc.sim import gpu_check
from lgvsc.sim.cli import main
from lgvsc.sim.doctor import diagnose, doctor
from lgvsc.sim.tiny_models import LTX_091_SCHEDULER, build_ntscc

N = 1024  # float32 elements in every synthetic weight file: 4 KiB, 2 KiB in bfloat16


def _weights(folder: Path, n: int = N) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.zeros(n)}, folder / "model.safetensors")


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def vlm_folder(root: Path, model_type: str) -> Path:
    p = root / model_type
    _weights(p)
    _json(p / "config.json", {"model_type": model_type})
    _json(p / "tokenizer.json", {})
    _json(p / "preprocessor_config.json", {})
    return p


def pipeline_folder(root: Path, name: str, cls: str, components: dict, index_extra=None,
                    scheduler: dict | None = None) -> Path:
    """A diffusers folder: model_index.json + each component's config and weights."""
    p = root / name
    index = {"_class_name": cls, **(index_extra or {})}
    for comp, (lib, cname) in components.items():
        index[comp] = [lib, cname]
        if cname.endswith("Scheduler"):
            _json(p / comp / "scheduler_config.json", scheduler or {})
        elif "Tokenizer" in cname:
            _json(p / comp / "tokenizer.json", {})
        elif cname.endswith("Processor"):
            _json(p / comp / "preprocessor_config.json", {})
        else:
            _weights(p / comp)
            _json(p / comp / "config.json", {"_class_name": cname})
    _json(p / "model_index.json", index)
    return p


LTX = {"scheduler": ("diffusers", "FlowMatchEulerDiscreteScheduler"),
       "vae": ("diffusers", "AutoencoderKLLTXVideo"),
       "text_encoder": ("transformers", "T5EncoderModel"),
       "tokenizer": ("transformers", "T5TokenizerFast"),
       "transformer": ("diffusers", "LTXVideoTransformer3DModel")}
WAN = {"scheduler": ("diffusers", "UniPCMultistepScheduler"),
       "vae": ("diffusers", "AutoencoderKLWan"),
       "text_encoder": ("transformers", "UMT5EncoderModel"),
       "tokenizer": ("transformers", "T5TokenizerFast"),
       "transformer": ("diffusers", "WanTransformer3DModel")}


def _report(path) -> str:
    lines, problems = diagnose(str(path))
    assert problems == [], problems
    return "\n".join(lines)


def test_vlm_folders_map_to_the_backend_with_memory(tmp_path):
    out = _report(vlm_folder(tmp_path, "qwen2_vl"))
    assert "VLM model_type 'qwen2_vl' -> VLM backend (Qwen2VLForConditionalGeneration)" in out
    assert "~0.00 GiB in bfloat16" in out and "scorer: {type: vlm" in out
    hf = _report(vlm_folder(tmp_path, "internvl"))
    assert "InternVLForConditionalGeneration" in hf and "threshold: auto" in hf


def test_memory_is_read_from_the_safetensors_headers(tmp_path):
    from lgvsc.sim.doctor import _memory

    p = vlm_folder(tmp_path, "qwen2_5_vl")
    assert _memory(p) == {"bfloat16": 2 * N, "float32": 4 * N}


def test_remote_code_internvl_is_refused_with_the_stand_in(tmp_path):
    lines, problems = diagnose(str(vlm_folder(tmp_path, "internvl_chat")))
    assert lines == [] and len(problems) == 1
    assert "internvl_chat" in problems[0] and "-hf" in problems[0]


def test_ltx_091_folder_says_dynamic_shifting(tmp_path):
    p = pipeline_folder(tmp_path, "ltx091", "LTXPipeline", LTX, scheduler=LTX_091_SCHEDULER)
    out = _report(p)
    assert "diffusers LTXPipeline -> world model 'diffusers', pipeline 'ltx'" in out
    assert "use_dynamic_shifting" in out and "text-to-video (text-only scheme): yes" in out
    # three model components of N float32 values: bf16 halves them
    assert f"~{3 * 2 * N / 2**30:.2f} GiB in bfloat16" in out


def test_wan_expand_timesteps_is_a_problem_naming_what_works(tmp_path):
    ok = pipeline_folder(tmp_path, "wan", "WanImageToVideoPipeline", WAN)
    assert "text-to-video (text-only scheme): no" in _report(ok)
    p = pipeline_folder(tmp_path, "wan22", "WanImageToVideoPipeline", WAN,
                        index_extra={"expand_timesteps": True})
    lines, problems = diagnose(str(p))
    assert lines == [] and len(problems) == 1
    assert "expand_timesteps" in problems[0] and "wan-vace" in problems[0]


def test_checkpoints_ntscc_and_vgg(tmp_path):
    out = _report(build_ntscc(tmp_path / "tiny.pt"))
    assert "NTSCC checkpoint" in out and "keyframe_codec: {type: ntscc" in out
    vgg = tmp_path / "vgg.pth"
    torch.save({f"features.{i}.weight": torch.zeros(2) for i in (0, 28)}, vgg)
    assert "VGG16 state dict -> metrics 'lpips' and 'dists'" in _report(vgg)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert len(diagnose(str(junk))[1]) == 1


def test_opensora_and_t5_folders(tmp_path):
    stdit = vlm_folder(tmp_path, "STDiT3")
    assert "Open-Sora STDiT3 -> world model 'opensora' (model:)" in _report(stdit)
    t5 = vlm_folder(tmp_path, "t5")
    assert "T5 text encoder" in _report(t5)


def test_exit_status_and_one_line_per_problem(tmp_path, capsys):
    good = vlm_folder(tmp_path, "qwen2_vl")
    assert main(["doctor", str(good)]) == 0
    other = tmp_path / "bert"
    _json(other / "config.json", {"model_type": "bert"})
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert main(["doctor", str(good), str(other), str(tmp_path / "empty"),
                 str(tmp_path / "missing")]) == 2
    problems = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("problem:")]
    assert len(problems) == 3
    assert "'bert' is loaded by no lgvsc component" in problems[0]
    assert "does not exist" in problems[2]
    assert main(["doctor"]) == 2  # nothing to do: one line, exit 2


# -- the tiny real-tier check --------------------------------------------------------------
def test_run_checks_reports_ok_fail_and_skip():
    def boom(env):
        raise RuntimeError("no\nluck")

    def skipped(env):
        raise gpu_check.Skipped("not here")

    out = io.StringIO()
    env = gpu_check.Env("cpu", "float32", Path("."))
    status = gpu_check.run_checks(env, [("fine", lambda env: None), ("boom", boom),
                                        ("later", skipped)], out)
    assert status == {"fine": "ok", "boom": "FAIL", "later": "skip"}
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"ok fine \d+\.\d", lines[0])
    assert lines[1].startswith("FAIL boom: RuntimeError: no luck (at test_doctor.py:")
    assert lines[2] == "skip later: not here"


def test_gpu_check_passes_on_cpu(capfd):
    assert gpu_check.main(["--device", "cpu"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0].startswith("gpu-check on cpu") and "0 failed" in out[-1]
    names = [ln.split()[1] for ln in out[1:-1] if ln.startswith("ok ")]
    assert not [ln for ln in out if ln.startswith("FAIL")]
    for want in ("vlm-scorer-direct[internvl]", "vlm-scorer-paper[qwen2_5_vl]",
                 "world-model[diffusers", "keyframe-codec[ntscc]", "scheme[lgvsc",
                 "scheme[text-only:", "metric[lpips]", "metric[dists]", "metric[clip]"):
        assert any(n.startswith(want) for n in names), (want, out)
    assert len(out) == len(gpu_check.CHECKS) + 2  # one line per check, nothing else
