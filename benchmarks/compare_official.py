"""Our MNIST MLP training step against the official code's, side by side on this machine (a dev tool).

    git clone -b mnist_ref https://github.com/podgorskiy/ALAE official_alae
    python -m venv torchenv && torchenv/bin/pip install torch yacs numpy
    python benchmarks/compare_official.py --official official_alae --torch-python torchenv/bin/python

The official step is the official code itself, imported from the checkout in a child process
(nothing of it is copied here): `model_z_gan.Model` built from `configs/experiment_mnist_fc.yaml`,
its `LREQAdam` optimizers as `Z_GAN.py` makes them, and `Z_GAN.py`'s three updates plus the EMA
`lerp`, on random batches of 128 images scaled like its loader (x / 255). Its `net.py` imports
`dlutils.pytorch.count_parameters` to print parameter counts; dlutils does not import on torch 2
(it needs `torch.autograd.gradcheck.zero_gradients`), so the child provides that one function as
a no-op. Ours is `benchmarks/train_throughput.py` (the product's `fit` step): fp32, --jit, bf16.

Each round times every path once, alternating (official, then ours); the medians over rounds
are compared. GFLOP/s use 9.86 GFLOP per step (XLA's count for the MLP step, batch 128), and the
machine's GEMM rate is the best of TensorFlow and PyTorch on a 128x1024x1024 matmul, fp32 and
bf16, each timed for 2 s after 20 untimed calls (one call at a time, as a step issues them). Prints one line per measurement, then a JSON object on the last line.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEP_GFLOP = 9.86
GEMM = (128, 1024, 1024)
OURS = {"fp32": [], "jit": ["--jit"], "bf16": ["--mixed-precision", "bf16"]}
REPO = Path(__file__).resolve().parents[1]

# The official mnist_ref model, built in a torch child process from the checkout at sys.argv[1]
# (also used by benchmarks/inference_latency.py --official).
OFFICIAL_MODEL = r"""
import json, sys, time, types
import torch
root = sys.argv[1]
sys.path.insert(0, root)
# net.py imports dlutils.pytorch.count_parameters only to print counts; dlutils fails on torch 2.
dlutils, dlutils_pytorch = types.ModuleType("dlutils"), types.ModuleType("dlutils.pytorch")
dlutils_pytorch.count_parameters = lambda *args, **kwargs: None
dlutils.pytorch = dlutils_pytorch
sys.modules.update({"dlutils": dlutils, "dlutils.pytorch": dlutils_pytorch})
from defaults import get_cfg_defaults
from model_z_gan import Model
from custom_adam import LREQAdam

cfg = get_cfg_defaults()
cfg.merge_from_file(root + "/configs/experiment_mnist_fc.yaml")
m, t = cfg.MODEL, cfg.TRAIN

def build(**extra):
    return Model(startf=m.START_CHANNEL_COUNT, layer_count=m.LAYER_COUNT, maxf=m.MAX_CHANNEL_COUNT,
                 latent_size=m.LATENT_SPACE_SIZE, mapping_layers=m.MAPPING_LAYERS, channels=m.CHANNELS,
                 generator=m.GENERATOR, encoder=m.ENCODER, mapping_to_latent=m.MAPPING_TO_LATENT,
                 mapping_from_latent=m.MAPPING_FROM_LATENT, **extra)
"""

OFFICIAL_STEP = OFFICIAL_MODEL + r"""
warmup, steps = int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = build(dlatent_avg_beta=m.DLATENT_AVG_BETA, style_mixing_prob=m.STYLE_MIXING_PROB)
model.train()
model_s = build(truncation_psi=m.TRUNCATIOM_PSI, truncation_cutoff=m.TRUNCATIOM_CUTOFF)
model_s.eval()
model_s.requires_grad_(False)
betas = (t.ADAM_BETA_0, t.ADAM_BETA_1)
decoder_optimizer = LREQAdam([{"params": model.decoder.parameters()}, {"params": model.mapping_fl.parameters()}],
                             lr=t.BASE_LEARNING_RATE, betas=betas, weight_decay=0.0)
encoder_optimizer = LREQAdam([{"params": model.encoder.parameters()}, {"params": model.mapping_tl.parameters()}],
                             lr=t.BASE_LEARNING_RATE, betas=betas, weight_decay=0.0)
lod, blend, batch = m.LAYER_COUNT - 1, 1.0, 128
images = [torch.randint(0, 256, (batch, 1, 28, 28)).float() for _ in range(8)]

def step(i):
    x = images[i % len(images)] / 255
    x.requires_grad = True
    encoder_optimizer.zero_grad()
    loss_d = model(x, lod, blend, d_train=True, ae=False, alt=False)
    loss_d.backward()
    encoder_optimizer.step()
    decoder_optimizer.zero_grad()
    loss_g = model(x, lod, blend, d_train=False, ae=False, alt=False)
    loss_g.backward()
    decoder_optimizer.step()
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    lae = model(x, lod, blend, d_train=True, ae=True, alt=False)
    lae.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    model_s.lerp(model, 0.5 ** (batch / (10 * 1000.0)))
    return loss_d, loss_g, lae

for i in range(warmup):
    step(i)
start = time.perf_counter()
for i in range(steps):
    losses = step(i)
seconds = time.perf_counter() - start
a, b = torch.randn(GEMM_M, GEMM_K), torch.randn(GEMM_K, GEMM_N)
gemm = {}
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    x, y = a.to(dtype), b.to(dtype)
    for _ in range(20):
        x @ y
    runs, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < 2.0:
        x @ y
        runs += 1
    gemm[name] = 2 * GEMM_M * GEMM_K * GEMM_N * runs / (time.perf_counter() - begin) / 1e9
print(json.dumps({"steps_per_sec": steps / seconds, "losses": [float(v) for v in losses],
                  "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "gemm_gflops": gemm}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="a checkout of podgorskiy/ALAE, branch mnist_ref")
    parser.add_argument("--torch-python", required=True, help="a python with torch and yacs (the official code's needs)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement (default: 100)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (default: 20)")
    parser.add_argument("--paths", default="fp32,jit,bf16", help="our paths to time (default: fp32,jit,bf16)")
    return parser.parse_args(argv)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run_official(args) -> dict:
    m, k, n = GEMM
    code = OFFICIAL_STEP.replace("GEMM_M", str(m)).replace("GEMM_K", str(k)).replace("GEMM_N", str(n))
    done = subprocess.run([args.torch_python, "-c", code, str(args.official.resolve()), str(args.warmup), str(args.steps)],
                          cwd=args.official, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: the official step failed:\n{done.stderr[-2000:]}")
    return last_json(done.stdout)


def run_ours(args, path: str) -> dict:
    command = [sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--warmup", str(args.warmup),
               "--window", str(args.steps), "--windows", "1", *OURS[path]]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: our {path} step failed:\n{done.stderr[-2000:]}")
    return last_json(done.stdout)


def tensorflow_gemm() -> dict:
    import tensorflow as tf

    m, k, n = GEMM
    rates = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        a, b = tf.cast(tf.random.normal([m, k]), dtype), tf.cast(tf.random.normal([k, n]), dtype)
        matmul = tf.function(lambda x, y: tf.linalg.matmul(x, y))
        for _ in range(20):
            matmul(a, b).numpy()
        runs, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < 2.0:
            matmul(a, b).numpy()
            runs += 1
        rates[name] = 2 * m * k * n * runs / (time.perf_counter() - begin) / 1e9
    return rates


def cpu_description() -> dict:
    model, flags = platform.processor(), set()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            if key.strip() == "Flags":
                flags = set(value.split())
    except FileNotFoundError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.official / "model_z_gan.py").is_file():
        print(f"error: {args.official} has no model_z_gan.py: pass a checkout of podgorskiy/ALAE at branch mnist_ref",
              file=sys.stderr)
        return 2
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in OURS]
    if unknown:
        print(f"error: unknown path(s) {unknown}; choose from {list(OURS)}", file=sys.stderr)
        return 2
    rates = {"official": [], **{path: [] for path in paths}}
    torch_gemm = {}
    for round_ in range(1, args.rounds + 1):
        official = run_official(args)
        torch_gemm = official["gemm_gflops"]
        rates["official"].append(official["steps_per_sec"])
        print(f"round {round_}: official {official['steps_per_sec']:.2f} steps/s (torch {official['torch']}, "
              f"{official['threads']} threads, {official['parameters']} parameters)", flush=True)
        for path in paths:
            ours = run_ours(args, path)
            rates[path].append(ours["steps_per_sec"])
            print(f"round {round_}: ours {path} {ours['steps_per_sec']:.2f} steps/s", flush=True)
    tf_gemm = tensorflow_gemm()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    best_gemm = {kind: max(tf_gemm[kind], torch_gemm.get(kind, 0.0)) for kind in ("fp32", "bf16")}
    result = {
        "benchmark": "compare_official", "date": time.strftime("%Y-%m-%d"), "cpu": cpu_description(),
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "step_gflop": STEP_GFLOP,
        "steps_per_sec": {name: [round(v, 3) for v in values] for name, values in rates.items()},
        "median_steps_per_sec": {name: round(v, 3) for name, v in medians.items()},
        "ratio_to_official": {name: round(v / medians["official"], 3) for name, v in medians.items() if name != "official"},
        "achieved_gflops": {name: round(v * STEP_GFLOP, 1) for name, v in medians.items()},
        "gemm_gflops": {"tensorflow": {k: round(v, 1) for k, v in tf_gemm.items()},
                        "torch": {k: round(v, 1) for k, v in torch_gemm.items()}, "best": {k: round(v, 1) for k, v in best_gemm.items()}},
        "share_of_best_gemm": {name: round(v * STEP_GFLOP / best_gemm["bf16" if name == "bf16" else "fp32"], 3)
                               for name, v in medians.items()},
    }
    for name in medians:
        ratio = "" if name == "official" else f" ({result['ratio_to_official'][name]:.2f}x the official)"
        print(f"{name}: median {medians[name]:.2f} steps/s{ratio}, {result['achieved_gflops'][name]} GFLOP/s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
