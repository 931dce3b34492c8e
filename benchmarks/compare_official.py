"""Our training step against the official code's, side by side on this machine (a dev tool).

Two models (`--model`):

  mlp (default)  the MNIST MLP step: the official branch mnist_ref, batch 128, steps/s.
  style32        the StyleALAE MNIST step at 32x32, top level: the official branch master
                 (`configs/mnist.yaml`), batch 64, images/s.

    git clone -b mnist_ref https://github.com/podgorskiy/ALAE official_alae
    python -m venv torchenv && torchenv/bin/pip install torch yacs numpy
    python benchmarks/compare_official.py --official official_alae --torch-python torchenv/bin/python

    git clone -b master https://github.com/podgorskiy/ALAE official_master
    # or from a local mirror: mkdir official_master && git --git-dir=MIRROR.git archive master | tar -x -C official_master
    python benchmarks/compare_official.py --model style32 --official official_master --torch-python torchenv/bin/python

The official step is the official code itself, imported from the checkout in a child process
(nothing of it is copied here); the official code calls `.cuda()` only in its training scripts,
which the child does not import, so it runs on the CPU.

mlp: `model_z_gan.Model` built from `configs/experiment_mnist_fc.yaml`, its `LREQAdam`
optimizers as `Z_GAN.py` makes them, and `Z_GAN.py`'s three updates plus the EMA `lerp`, on
random batches of 128 images scaled like its loader (x / 255). Its `net.py` imports
`dlutils.pytorch.count_parameters` to print parameter counts; dlutils does not import on torch 2
(it needs `torch.autograd.gradcheck.zero_gradients`), so the child provides that one function as
a no-op. Ours: `benchmarks/train_throughput.py` (the product's `fit` step): fp32, --jit, bf16, and
fp32-eigen (fp32 with TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's Eigen kernels instead of oneDNN's).

style32: what `train_alae.py` does, call for call, for `configs/mnist.yaml` merged into
`defaults.get_cfg_defaults()`: `model.Model` and the EMA copy `model_s` (eval, no grad), the two
`LREQAdam` optimizers (encoder + mapping_d; decoder + mapping_f; lr, betas, weight decay 0 as
there), its `ComboMultiStepLR` (which sets the lr to LEARNING_RATES[lod], 0.0015) and its
`lod_driver.LODDriver` set to the first epoch of the top level after the fade-in (lod
LAYER_COUNT - 1 = 3, blend factor 1, batch LOD_2_BATCH_1GPU[3] = 64). Per step: the batch
scaled as there (x / 127.5 - 1), `x.requires_grad = True`, the D/E update with the R1 penalty
(`model(x, lod, blend_factor, d_train=True, ae=False)`), the F/G update (`d_train=False`), the
latent-reciprocity update (`ae=True`), each with zero_grad/backward/step as there, then
`model_s.lerp(model, betta)` with betta = 0.5 ** (64 / 10000) and `lod2batch.step()`. Not
mirrored: the loss tracker, checkpoints and sample images (bookkeeping outside the step). The
images are random in [-1, 1] (random 0..255 values, as the loader yields, scaled as there):
the step's cost does not depend on the pixel values, so real data is not needed for timing.
torch uses os.cpu_count() threads. Ours: `benchmarks/train_throughput.py --preset
mnist_style32` (real MNIST padded to 32x32, top level after the fade-in, batch 64): fp32,
--jit, bf16.

Each round times every path once, alternating (official, then ours); the medians over rounds
are compared. GFLOP/s use XLA's count of each step's arithmetic: mlp 9.86 GFLOP per step
(batch 128), both codes; style32 (`benchmarks/style_flops.py`, the mnist_style32 row) ours 8.57
GFLOP per image + 0.30 per step (Adam, EMA, kernel transforms) = 548.6 GFLOP per step of 64, the
official 13.17 per image + 0.17 = 843.0: our step before G's upsample + conv and E's conv +
downsample became stride-2 convolutions (4 taps per output pixel instead of 9, the official
code's fused_scale, which it uses only from 128x128 up). The official step at blend 1 skips the
fade-in's coarse toRGB/fromRGB, which our graph computes, a small part. The machine's GEMM
rate is the best of TensorFlow and PyTorch on a 128x1024x1024 matmul, fp32 and bf16: a chain of
16 dependent matmuls (x = x @ b, as a step's layers follow one another), timed for 2 s after
untimed warm-up; TensorFlow's chain is one `tf.function`, as a training step is one graph.
(Until 2026-12-05 each TensorFlow matmul was its own `tf.function` call, whose dispatch, ~0.2 ms,
was counted as matmul time: on the Zen 4 EPYC that day, bf16 258 GFLOP/s per call against 316 in
a chain, fp32 140 against 178; PyTorch's eager calls measure the same either way, 408 / 161.) Prints one line per measurement, then a JSON object on the last
line.
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serving.command_line import CommandParser, python_with

GEMM = (128, 1024, 1024)
GEMM_CHAIN = 16  # dependent matmuls per timed call: x = x @ b, b square (k == n)
OURS = {"fp32": [], "jit": ["--jit"], "bf16": ["--mixed-precision", "bf16"], "fp32-eigen": []}
# Environment for a path's child: fp32-eigen is fp32 with TensorFlow's oneDNN kernels off (its Eigen
# kernels), what TensorFlow picks by default on CPUs where alae_tf now turns oneDNN on.
OURS_ENV = {"fp32-eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"}}
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

# Z_GAN.py's step (mnist_ref). Defines `model`, `batch` and `step(i)` for OFFICIAL_TIMING.
OFFICIAL_MLP_STEP = OFFICIAL_MODEL + r"""
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
"""

# train_alae.py's step (master) for configs/mnist.yaml at the top level, imported from the
# checkout at sys.argv[1]. master's model/net/losses need no dlutils (only train_alae.py
# imports it, and it is not imported here). Defines `model`, `batch` and `step(i)`.
# train_alae.py's Model and LREQAdam as it builds them from cfg (model.Model, custom_adam.LREQAdam
# imported), for the children here and in benchmarks/mode_coverage.py.
OFFICIAL_BUILDERS = r"""
def build(**extra):
    m = cfg.MODEL
    return Model(startf=m.START_CHANNEL_COUNT, layer_count=m.LAYER_COUNT, maxf=m.MAX_CHANNEL_COUNT,
                 latent_size=m.LATENT_SPACE_SIZE, mapping_layers=m.MAPPING_LAYERS, channels=m.CHANNELS,
                 generator=m.GENERATOR, encoder=m.ENCODER, z_regression=m.Z_REGRESSION, **extra)

def lreq_adam(*nets):
    return LREQAdam([{"params": net.parameters()} for net in nets], lr=cfg.TRAIN.BASE_LEARNING_RATE,
                    betas=(cfg.TRAIN.ADAM_BETA_0, cfg.TRAIN.ADAM_BETA_1), weight_decay=0)
"""

# train_alae.py's three updates on a batch x (requires_grad set), for the children that define
# model, lod2batch and the two optimizers as it does (here and benchmarks/mode_coverage.py).
OFFICIAL_UPDATES = r"""
def official_updates(x, blend_factor):
    encoder_optimizer.zero_grad()
    loss_d = model(x, lod2batch.lod, blend_factor, d_train=True, ae=False)
    loss_d.backward()
    encoder_optimizer.step()

    decoder_optimizer.zero_grad()
    loss_g = model(x, lod2batch.lod, blend_factor, d_train=False, ae=False)
    loss_g.backward()
    decoder_optimizer.step()

    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    lae = model(x, lod2batch.lod, blend_factor, d_train=True, ae=True)
    lae.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    return loss_d, loss_g, lae
"""

OFFICIAL_STYLE32_STEP = r"""
import json, logging, os, random, sys, time
import torch
root = sys.argv[1]
sys.path.insert(0, root)
torch.set_num_threads(os.cpu_count())
from defaults import get_cfg_defaults
from model import Model
from custom_adam import LREQAdam
from scheduler import ComboMultiStepLR
import lod_driver

cfg = get_cfg_defaults()
cfg.merge_from_file(os.path.join(root, "configs", "mnist.yaml"))
cfg.freeze()
torch.manual_seed(0)
random.seed(0)  # Model.generate draws style mixing with random.random()
""" + OFFICIAL_BUILDERS + r"""
model = build(dlatent_avg_beta=cfg.MODEL.DLATENT_AVG_BETA, style_mixing_prob=cfg.MODEL.STYLE_MIXING_PROB)
model.train()
model_s = build(truncation_psi=cfg.MODEL.TRUNCATIOM_PSI, truncation_cutoff=cfg.MODEL.TRUNCATIOM_CUTOFF)
model_s.eval()
model_s.requires_grad_(False)
decoder_optimizer = lreq_adam(model.decoder, model.mapping_f)
encoder_optimizer = lreq_adam(model.encoder, model.mapping_d)
scheduler = ComboMultiStepLR(optimizers={"encoder_optimizer": encoder_optimizer, "decoder_optimizer": decoder_optimizer},
                             milestones=cfg.TRAIN.LEARNING_DECAY_STEPS, gamma=cfg.TRAIN.LEARNING_DECAY_RATE,
                             reference_batch_size=32, base_lr=cfg.TRAIN.LEARNING_RATES)
# One GPU (world size 1); dataset_size only enters the blend factor during a fade-in.
lod2batch = lod_driver.LODDriver(cfg, logging.getLogger("official"), 1, dataset_size=cfg.DATASET.SIZE)
# The first epoch of the top level after its fade-in (the first half of a level's epochs fades in).
epoch = (cfg.MODEL.LAYER_COUNT - 1) * cfg.TRAIN.EPOCHS_PER_LOD + cfg.TRAIN.EPOCHS_PER_LOD // 2
lod2batch.set_epoch(epoch, [encoder_optimizer, decoder_optimizer])
scheduler.set_batch_size(lod2batch.get_batch_size(), lod2batch.lod)
batch = lod2batch.get_per_GPU_batch_size()
resolution = model.decoder.layer_to_resolution[lod2batch.lod]
assert (lod2batch.lod, lod2batch.get_blend_factor(), batch, resolution) == (cfg.MODEL.LAYER_COUNT - 1, 1, 64, 32)
# The loader yields float32 tensors of 0..255 values (MNIST padded to 32x32); random ones cost the same.
images = [torch.randint(0, 256, (batch, cfg.MODEL.CHANNELS, resolution, resolution)).float() for _ in range(4)]

""" + OFFICIAL_UPDATES + r"""
def step(i):
    with torch.no_grad():
        x_orig = images[i % len(images)]
        x_orig = (x_orig / 127.5 - 1.)
        blend_factor = lod2batch.get_blend_factor()
        x = x_orig  # not in transition: no blend with the half-resolution image
    x.requires_grad = True

    loss_d, loss_g, lae = official_updates(x, blend_factor)

    betta = 0.5 ** (lod2batch.get_batch_size() / (10 * 1000.0))
    model_s.lerp(model, betta)
    lod2batch.step()
    return loss_d, loss_g, lae
"""

# Shared by both official children: times `step`, measures torch's GEMM rate, prints JSON.
OFFICIAL_TIMING = r"""
warmup, steps = int(sys.argv[2]), int(sys.argv[3])
for i in range(warmup):
    step(i)
start = time.perf_counter()
for i in range(steps):
    losses = step(i)
seconds = time.perf_counter() - start
a, b = torch.randn(GEMM_M, GEMM_K), torch.randn(GEMM_K, GEMM_N) / GEMM_K ** 0.5  # keeps x's scale
gemm = {}
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    x0, y = a.to(dtype), b.to(dtype)
    def chain():
        x = x0
        for _ in range(GEMM_CHAIN):
            x = x @ y
        return x
    for _ in range(3):
        chain()
    runs, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < 2.0:
        chain()
        runs += 1
    gemm[name] = 2 * GEMM_M * GEMM_K * GEMM_N * GEMM_CHAIN * runs / (time.perf_counter() - begin) / 1e9
print(json.dumps({"steps_per_sec": steps / seconds, "images_per_sec": batch * steps / seconds, "batch": batch,
                  "losses": [v.item() for v in losses], "parameters": sum(p.numel() for p in model.parameters()),
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "gemm_gflops": gemm}))
"""


@dataclasses.dataclass(frozen=True)
class Mode:
    branch: str  # the official branch the checkout must be
    needs: tuple  # files the checkout must have (the first missing one is named in the error)
    child: str  # the official step's torch child (before OFFICIAL_TIMING)
    preset: list  # train_throughput.py arguments that select our model
    batch: int
    rate: str  # what is compared: "steps_per_sec" or "images_per_sec" (both sides report both)
    unit: str
    step_gflop: float  # XLA's count of our step
    official_step_gflop: float  # the same count of the official step's arithmetic
    fields: dict  # extra JSON fields


MODES = {
    "mlp": Mode("mnist_ref", ("model_z_gan.py",), OFFICIAL_MLP_STEP, [], 128, "steps_per_sec", "steps/s", 9.86, 9.86, {}),
    # benchmarks/style_flops.py, row mnist_style32, over batches 2, 4, 8: ours slope 8,567,035,576 and
    # intercept 295,670,302 FLOPs; the official's arithmetic = our step before the stride-2 resampling
    # convolutions (commit 827cbcc): slope 13,167,563,192, intercept 174,477,928.
    "style32": Mode("master", ("model.py", "train_alae.py", "configs/mnist.yaml", "lod_driver.py", "scheduler.py",
                               "custom_adam.py", "defaults.py"),
                    OFFICIAL_STYLE32_STEP, ["--preset", "mnist_style32"], 64, "images_per_sec", "images/s",
                    round(64 * 8.567 + 0.296, 1), round(64 * 13.168 + 0.174, 1),
                    {"model": "style32", "batch": 64, "image_gflop": 8.57, "official_image_gflop": 13.17}),
}
DEFAULT_COUNTS = {"mlp": {"steps": 100, "warmup": 20}, "style32": {"steps": 10, "warmup": 3}}


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/compare_official.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=list(MODES), default="mlp",
                        help="mlp: the MNIST MLP step (official branch mnist_ref, batch 128, steps/s); "
                             "style32: the StyleALAE MNIST step at 32x32 (official branch master, configs/mnist.yaml, "
                             "batch 64, images/s) (default: mlp)")
    parser.add_argument("--official", type=Path, required=True,
                        help="a checkout of podgorskiy/ALAE: branch mnist_ref for --model mlp, master for --model style32")
    parser.add_argument("--torch-python", required=True, type=python_with("torch", "yacs"), help="a python with torch and yacs (the official code's needs)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default: mlp 100, style32 10)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: mlp 20, style32 3)")
    parser.add_argument("--paths", default="fp32,jit,bf16", help="our paths to time, of fp32, jit, bf16 and fp32-eigen (fp32 with "
                             "TF_ENABLE_ONEDNN_OPTS=0) (default: fp32,jit,bf16)")
    args = parser.parse_args(argv)
    for key, value in DEFAULT_COUNTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.rounds, args.steps, args.warmup) < 1:  # train_throughput.py times after one warm-up step at least
        parser.error("--rounds, --steps and --warmup must be at least 1")
    return args


def checkout_error(official: Path, mode: Mode):
    """One error line if `official` lacks a file the mode needs, else None."""
    for name in mode.needs:
        if not (official / name).is_file():
            return f"error: {official} has no {name}: pass a checkout of podgorskiy/ALAE at branch {mode.branch}"
    return None


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run_official(args, mode: Mode) -> dict:
    m, k, n = GEMM
    code = (mode.child + OFFICIAL_TIMING).replace("GEMM_CHAIN", str(GEMM_CHAIN))
    code = code.replace("GEMM_M", str(m)).replace("GEMM_K", str(k)).replace("GEMM_N", str(n))
    done = subprocess.run([args.torch_python, "-c", code, str(args.official.resolve()), str(args.warmup), str(args.steps)],
                          cwd=args.official, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: the official step failed:\n{done.stderr[-2000:]}")
    return last_json(done.stdout)


def run_ours(args, mode: Mode, path: str) -> dict:
    command = [sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), *mode.preset, "--warmup", str(args.warmup),
               "--window", str(args.steps), "--windows", "1", *OURS[path]]
    env = {**os.environ, **OURS_ENV.get(path, {})}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"error: our {path} step failed:\n{done.stderr[-2000:]}")
    return last_json(done.stdout)


def tensorflow_gemm() -> dict:
    import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
    import tensorflow as tf

    m, k, n = GEMM
    rates = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        a = tf.cast(tf.random.normal([m, k]), dtype)
        b = tf.cast(tf.random.normal([k, n]) / k**0.5, dtype)  # keeps x's scale along the chain

        @tf.function
        def chain(x, y):
            for _ in range(GEMM_CHAIN):
                x = tf.linalg.matmul(x, y)
            return x

        for _ in range(3):
            chain(a, b).numpy()
        runs, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < 2.0:
            chain(a, b).numpy()
            runs += 1
        rates[name] = 2 * m * k * n * GEMM_CHAIN * runs / (time.perf_counter() - begin) / 1e9
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
    mode = MODES[args.model]
    error = checkout_error(args.official, mode)
    if error:
        print(error, file=sys.stderr)
        return 2
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in OURS]
    if unknown:
        print(f"error: unknown path(s) {unknown}; choose from {list(OURS)}", file=sys.stderr)
        return 2
    rates = {"official": [], **{path: [] for path in paths}}
    torch_gemm = {}
    for round_ in range(1, args.rounds + 1):
        official = run_official(args, mode)
        torch_gemm = official["gemm_gflops"]
        rates["official"].append(official[mode.rate])
        print(f"round {round_}: official {official[mode.rate]:.2f} {mode.unit} (torch {official['torch']}, "
              f"{official['threads']} threads, {official['parameters']} parameters)", flush=True)
        for path in paths:
            ours = run_ours(args, mode, path)
            if ours["batch_size"] != official["batch"]:
                sys.exit(f"error: our {path} step ran batch {ours['batch_size']}, the official {official['batch']}")
            rates[path].append(ours[mode.rate])
            print(f"round {round_}: ours {path} {ours[mode.rate]:.2f} {mode.unit}", flush=True)
    tf_gemm = tensorflow_gemm()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    # GFLOP per unit of the compared rate: per step, or per image (a step's count over its batch).
    per_unit = mode.batch if mode.rate == "images_per_sec" else 1
    unit_gflop = {name: (mode.official_step_gflop if name == "official" else mode.step_gflop) / per_unit for name in medians}
    best_gemm = {kind: max(tf_gemm[kind], torch_gemm.get(kind, 0.0)) for kind in ("fp32", "bf16")}
    result = {
        "benchmark": "compare_official", **mode.fields, "date": time.strftime("%Y-%m-%d"), "cpu": cpu_description(),
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "step_gflop": mode.step_gflop,
        "official_step_gflop": mode.official_step_gflop,
        mode.rate: {name: [round(v, 3) for v in values] for name, values in rates.items()},
        f"median_{mode.rate}": {name: round(v, 3) for name, v in medians.items()},
        "ratio_to_official": {name: round(v / medians["official"], 3) for name, v in medians.items() if name != "official"},
        "achieved_gflops": {name: round(v * unit_gflop[name], 1) for name, v in medians.items()},
        "gemm_gflops": {"tensorflow": {k: round(v, 1) for k, v in tf_gemm.items()},
                        "torch": {k: round(v, 1) for k, v in torch_gemm.items()}, "best": {k: round(v, 1) for k, v in best_gemm.items()}},
        "share_of_best_gemm": {name: round(v * unit_gflop[name] / best_gemm["bf16" if name == "bf16" else "fp32"], 3)
                               for name, v in medians.items()},
    }
    for name in medians:
        ratio = "" if name == "official" else f" ({result['ratio_to_official'][name]:.2f}x the official)"
        print(f"{name}: median {medians[name]:.2f} {mode.unit}{ratio}, {result['achieved_gflops'][name]} GFLOP/s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
