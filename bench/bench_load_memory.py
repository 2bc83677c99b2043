"""Peak RSS of `from_pretrained(dtype=bfloat16)` against the checkpoint's bytes, on a ~1.35B scaled UFVideo
(real SigLIP-so400m, SAM2 Hiera-L and connector shapes; Qwen2 cut to width 1536 x 4 layers) written in bf16.

Run: `python bench/bench_load_memory.py [--workdir /tmp/ufvideo_load_bench]`. Each load runs in a fresh process;
the peak is the kernel's VmHWM, and `over import` subtracts the RSS of the imports (python + torch + ufvideo).
`previous` is the loader before this change: a float32 build, then safetensors' `load_model`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

GIB = 1 << 30


def scaled_config():  # noqa: ANN201 - imported lazily so the parent process stays small
    from ufvideo.model.configuration import QWEN2_7B, UFVideoConfig

    text = {**QWEN2_7B, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 4}
    return UFVideoConfig(text_config={**text, "num_attention_heads": 12, "num_key_value_heads": 2})


def write(workdir: Path) -> None:
    """Random bf16 weights, once as one file and once as 1 GiB shards with their index."""
    import torch

    from ufvideo.model import UFVideoForConditionalGeneration
    from ufvideo.model.weights import save_sharded

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    model = UFVideoForConditionalGeneration(scaled_config())
    for name, shard in (("single", 64 * GIB), ("sharded", GIB)):
        directory = workdir / name
        model.config.save_pretrained(str(directory))
        save_sharded(((k, v.detach()) for k, v in model.state_dict().items()), directory, shard)


def load(directory: Path, mode: str) -> dict[str, float]:
    """In this (fresh) process: RSS after imports, then the peak while loading."""
    import torch

    from ufvideo.model import UFVideoForConditionalGeneration
    from ufvideo.model.weights import weight_files

    base = _status_kib("VmRSS")
    if mode == "bf16":
        model = UFVideoForConditionalGeneration.from_pretrained(directory, dtype=torch.bfloat16)
    else:  # the previous loader: a float32 model, then the file's tensors copied in
        from safetensors.torch import load_model

        model = UFVideoForConditionalGeneration(UFVideoForConditionalGeneration.config_class.from_pretrained(directory))
        for path in weight_files(directory):
            load_model(model, str(path), strict=False)
    params = sum(p.numel() for p in model.parameters())
    return {"base_kib": base, "peak_kib": _status_kib("VmHWM"), "params": params}


def _status_kib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/ufvideo_load_bench")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(load(Path(args.child[0]), args.child[1])))
        return
    workdir = Path(args.workdir)
    if not (workdir / "sharded" / "model.safetensors.index.json").is_file():
        _run_write(workdir)
    print("| checkpoint | loader | params | checkpoint GiB | peak RSS GiB | peak / ckpt | (peak - import) / ckpt |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in ("single", "sharded"):
        directory = workdir / name
        size = sum(p.stat().st_size for p in directory.glob("*.safetensors"))
        for mode in ("bf16", "previous"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(directory), mode], check=True, capture_output=True, text=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            peak, base = r["peak_kib"] * 1024, r["base_kib"] * 1024
            label = "from_pretrained(dtype=bf16)" if mode == "bf16" else "previous (fp32 build + load_model)"
            print(
                f"| {name} | {label} | {r['params'] / 1e9:.2f}B | {size / GIB:.2f} | {peak / GIB:.2f} "
                f"| {peak / size:.2f}x | {(peak - base) / size:.2f}x |"
            )


def _run_write(workdir: Path) -> None:
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_load_memory as b; "
    code += f"from pathlib import Path; b.write(Path({str(workdir)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
