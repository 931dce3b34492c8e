"""What StyleALAE's generator covers after a short run, ours against the official code (a dev tool).

The `folder64` preset's generator collapsed onto one disc colour on a synthetic folder (README,
"Your own images, start to finish"). This trains both codes with the same hyperparameters on the
same images and counts what their generators draw, so that a change can be judged by a figure.

    git clone -b master https://github.com/podgorskiy/ALAE official_master
    python -m venv torchenv && torchenv/bin/pip install torch yacs numpy pillow
    python benchmarks/mode_coverage.py --official official_master --torch-python torchenv/bin/python

The images: 3,600 32x32 RGB PNGs written once to `--work`: a red or a blue disc (equally often),
small (radius 4.5, 6% of the image) or large (radius 10, 31%), anywhere on a grey background, each
drawn at 64x64 and box-reduced (no resizing in either loader).

Both codes train 4 levels (4x4 .. 32x32) with `folder64`'s settings: latent 32, F of 3 layers,
channels 16 and 32, batch 16, learning rate 0.002, 640 images per level (the first half fading
in), style mixing 0.9, R1 gamma 10, for `--steps` steps (`--set SECTION.KEY=VALUE` changes a
setting of ours, e.g. `model.generator_rgb_gain=0.03` or `model.disc_kind=linear`, the official
networks' toRGB gain and D). Ours: `python -m alae_tf.train` on the folder, with `folder64`'s
preset changed to 32x32 (`--backbone` picks `style` or `style_official`, the official networks,
with E's style layers at the preset's `model.encoder_style_gain` 1 where the official's is
sqrt(2); the folder loader holds 10% of the images out, as for any folder). The official:
`train_alae.py`'s loop, call for call, as `compare_official.py`'s child does, in a child process
on the CPU: `model.Model`, its two `LREQAdam`, `ComboMultiStepLR`, `lod_driver.LODDriver` (2
epochs of 320 images per level, the first fading in), the fade-in blend of the reals, the three
updates.

The score: 256 samples of each code's live nets at the end, untruncated. A sample's disc is its
pixels more than 60 (of 255) from the median colour of its border rows; its colour the sign of
the disc's mean red minus blue; large when it covers more than 18% of the image. Coverage of an
attribute: twice the smaller of its two shares (1: half and half, 0: one kind only). Prints one
line per run, then a JSON object on the last line.
"""

import argparse
import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_official import OFFICIAL_BUILDERS, OFFICIAL_UPDATES  # noqa: E402
from serving.command_line import CommandParser, folder_to_write, python_with  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
IMAGES, RESOLUTION, SAMPLES = 3600, 32, 256
EPOCH_IMAGES = 320  # the official LODDriver's epoch: 2 per level of 640 images

# The child: the official code's training loop on the folder's images, then its live nets' samples, saved.
OFFICIAL_RUN = (r"""
import glob, json, logging, math, os, random, sys
import numpy as np, torch, torch.nn.functional as F
from PIL import Image
root, folder, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, root)
torch.set_num_threads(os.cpu_count())
from defaults import get_cfg_defaults
from model import Model
from custom_adam import LREQAdam
from scheduler import ComboMultiStepLR
import lod_driver

cfg = get_cfg_defaults()
cfg.merge_from_file(os.path.join(root, "configs", "mnist.yaml"))
cfg.MODEL.CHANNELS, cfg.MODEL.START_CHANNEL_COUNT, cfg.MODEL.MAX_CHANNEL_COUNT, cfg.MODEL.MAPPING_LAYERS = 3, 16, 32, 3
cfg.TRAIN.BASE_LEARNING_RATE, cfg.TRAIN.LEARNING_RATES, cfg.TRAIN.LOD_2_BATCH_1GPU = 0.002, [0.002] * 4, [16] * 4
cfg.TRAIN.EPOCHS_PER_LOD = 2
cfg.TRAIN.TRAIN_EPOCHS = math.ceil(steps * 16 / EPOCH_IMAGES)
cfg.freeze()
torch.manual_seed(seed)
random.seed(seed)
files = sorted(glob.glob(os.path.join(folder, "*.png")))
full = torch.tensor(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2),
                    dtype=torch.float32)
pyramid = {32: full}
for r in (16, 8, 4):  # the official dataset keeps each level's images, each a 2x2 mean of the next
    pyramid[r] = F.avg_pool2d(pyramid[2 * r], 2, 2)

""" + OFFICIAL_BUILDERS + r"""
model = build(dlatent_avg_beta=cfg.MODEL.DLATENT_AVG_BETA, style_mixing_prob=cfg.MODEL.STYLE_MIXING_PROB)
model.train()
decoder_optimizer = lreq_adam(model.decoder, model.mapping_f)
encoder_optimizer = lreq_adam(model.encoder, model.mapping_d)
scheduler = ComboMultiStepLR(optimizers={"encoder_optimizer": encoder_optimizer, "decoder_optimizer": decoder_optimizer},
                             milestones=cfg.TRAIN.LEARNING_DECAY_STEPS, gamma=cfg.TRAIN.LEARNING_DECAY_RATE,
                             reference_batch_size=32, base_lr=cfg.TRAIN.LEARNING_RATES)
lod2batch = lod_driver.LODDriver(cfg, logging.getLogger("official"), 1, dataset_size=EPOCH_IMAGES)
""" + OFFICIAL_UPDATES + r"""
step = 0
for epoch in range(cfg.TRAIN.TRAIN_EPOCHS):
    lod2batch.set_epoch(epoch, [encoder_optimizer, decoder_optimizer])
    scheduler.set_batch_size(lod2batch.get_batch_size(), lod2batch.lod)
    resolution = model.decoder.layer_to_resolution[lod2batch.lod]
    order = torch.randperm(len(full))[:EPOCH_IMAGES]
    for i in range(0, EPOCH_IMAGES, 16):
        if step == steps:
            break
        with torch.no_grad():
            x = pyramid[resolution][order[i:i + 16]] / 127.5 - 1.
            blend_factor = lod2batch.get_blend_factor()
            if lod2batch.in_transition:
                x = x * blend_factor + F.interpolate(F.avg_pool2d(x, 2, 2), resolution) * (1.0 - blend_factor)
        x.requires_grad = True
        official_updates(x, blend_factor)
        lod2batch.step()
        step += 1
with torch.no_grad():
    samples = model.generate(lod2batch.lod, 1.0, z=torch.randn(SAMPLES, 32), mixing=False, no_truncation=True)
np.save(sys.argv[5], samples.permute(0, 2, 3, 1).numpy())
print(json.dumps({"steps": step, "torch": torch.__version__, "lod": lod2batch.lod}))
""").replace("EPOCH_IMAGES", str(EPOCH_IMAGES)).replace("SAMPLES", str(SAMPLES))


def _setting(text: str) -> tuple:
    """SECTION.KEY=VALUE -> (section, key, the value read as YAML)."""
    name, equals, value = text.partition("=")
    section, dot, key = name.partition(".")
    if not (equals and dot and section and key):
        raise argparse.ArgumentTypeError(f"expected SECTION.KEY=VALUE, got {text!r}")
    return section, key, yaml.safe_load(value)


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/mode_coverage.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="a checkout of podgorskiy/ALAE at branch master (omit: ours only)")
    parser.add_argument("--torch-python", type=python_with("torch", "yacs", "PIL"), help="a python with torch, yacs and pillow (for --official)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps of each run (default: 1500)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds, one run of each code per seed (default: 0,1)")
    parser.add_argument("--backbone", choices=["style", "style_official"], default="style",
                        help="our networks: style (ours, folder64's) or style_official (the official networks) (default: style)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", type=_setting,
                        help="a config setting of our runs (repeatable; VALUE read as YAML), e.g. "
                        "model.generator_rgb_gain=0.03, model.disc_kind=linear")
    parser.add_argument("--work", type=folder_to_write, help="directory for the images and runs (default: a new temporary one, removed at the end)")
    args = parser.parse_args(argv)
    args.official = args.official and args.official.resolve()  # the children run elsewhere: paths resolved here
    args.work = args.work and args.work.resolve()
    try:
        args.seeds = ",".join(str(int(seed)) for seed in args.seeds.split(",") if seed.strip())
    except ValueError:
        parser.error(f"--seeds takes comma-separated whole numbers, got {args.seeds!r}")
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.official and not args.torch_python:
        parser.error("--official needs --torch-python")
    missing = [name for name in ("model.py", "lod_driver.py") if args.official and not (args.official / name).is_file()]
    if missing:  # branch mnist_ref has lod_driver.py but not model.py
        parser.error(f"{args.official} has no {missing[0]}: pass a checkout of podgorskiy/ALAE at branch master")
    from alae_tf.errors import ConfigError

    try:
        ours_config(args, 0)  # a bad --set fails here, before any images are written
    except ConfigError as exc:
        parser.error(str(exc))
    return args


def write_discs(folder: Path) -> None:
    """The image set (see the module docstring), the same for every call."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == IMAGES:
        return
    rng = np.random.default_rng(7)
    for i in range(IMAGES):
        red, large = i % 2, (i // 2) % 2
        grey = int(rng.integers(140, 210))
        image = Image.new("RGB", (64, 64), (grey, grey, grey))
        r = 20 if large else 9
        cx, cy = rng.integers(r + 2, 64 - r - 2, size=2)
        ImageDraw.Draw(image).ellipse([cx - r, cy - r, cx + r, cy + r], fill=(220, 30, 30) if red else (30, 30, 220))
        image.reduce(2).save(folder / f"disc{i:04d}.png")


def coverage(samples: np.ndarray) -> dict:
    """Shares of red / blue and large / small discs among samples [N, H, W, 3] in [-1, 1]."""
    x = np.clip((samples + 1) * 127.5, 0, 255)
    n = len(x)
    border = np.concatenate([x[:, :2].reshape(n, -1, 3), x[:, -2:].reshape(n, -1, 3)], axis=1)
    disc = np.linalg.norm(x - np.median(border, axis=1)[:, None, None, :], axis=-1) > 60
    area = disc.mean(axis=(1, 2))
    red_minus_blue = np.array([(im[..., 0] - im[..., 2])[m].mean() if m.any() else 0.0 for im, m in zip(x, disc)])
    found = area > 0.01
    shares = {"no_disc": 1 - found.mean(), "red": (found & (red_minus_blue > 0)).mean(),
              "blue": (found & (red_minus_blue < 0)).mean(), "large": (area > 0.18).mean(),
              "small": (found & (area <= 0.18)).mean()}
    shares = {k: round(float(v), 3) for k, v in shares.items()}
    shares["colour_coverage"] = round(2 * min(shares["red"], shares["blue"]), 3)
    shares["size_coverage"] = round(2 * min(shares["large"], shares["small"]), 3)
    return shares


def ours_config(args, seed: int):
    """folder64's config at 32x32 for `--steps` steps of `seed`, with the --set settings."""
    from alae_tf.config import load_preset
    from alae_tf.errors import ConfigError

    config = load_preset("folder64")
    config.model.backbone = args.backbone
    config.model.image_shape = [RESOLUTION, RESOLUTION, 3]
    config.train.level_batch_sizes = [16] * 4
    config.train.level_learning_rates = [0.002] * 4
    config.train.steps, config.train.seed = args.steps, seed
    config.train.checkpoint_every = config.train.sample_every = args.steps
    for section, key, value in args.set:
        if not hasattr(getattr(config, section, None), key):
            raise ConfigError(f"--set {section}.{key}: no such setting")
        setattr(getattr(config, section), key, value)
    config.validate("--set")
    return config


def train_ours(args, folder: Path, out: Path, seed: int) -> np.ndarray:
    from alae_tf.config import save_config

    config = ours_config(args, seed)
    config_file = out.parent / f"{out.name}.yaml"  # (a --set value may hold a dot)
    save_config(config, config_file)
    command = [sys.executable, "-m", "alae_tf.train", "--config", str(config_file), "--data-path", str(folder),
               "--out", str(out), "--verbose", "0"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: our training failed:\n{done.stderr[-2000:]}")
    import tensorflow as tf

    from alae_tf.inference import Sampler
    from alae_tf.run_dir import load_run

    _, model = load_run(str(out))
    sampler = Sampler.from_model(model, use_ema=False)
    z = tf.random.stateless_normal([SAMPLES, sampler.latent_dim], seed=[seed, 1])
    return sampler.generate(z).numpy()


def train_official(args, folder: Path, out: Path, seed: int) -> np.ndarray:
    samples = out.parent / f"{out.name}.npy"
    done = subprocess.run([args.torch_python, "-c", OFFICIAL_RUN, str(args.official.resolve()), str(folder),
                           str(args.steps), str(seed), str(samples)], cwd=args.official, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: the official training failed:\n{done.stderr[-2000:]}")
    return np.load(samples)


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="mode_coverage_"))
    if args.work is None:  # a temporary folder: removed at exit
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    folder = work / "discs"
    write_discs(folder)
    codes = {"ours": train_ours, **({"official": train_official} if args.official else {})}
    results = {code: {} for code in codes}
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        for code, train in codes.items():
            begin = time.perf_counter()
            changes = "".join(f"_{key}={value}" for _, key, value in args.set)
            name = f"ours_{args.backbone}{changes}" if code == "ours" else "official_master"
            shares = coverage(train(args, folder, work / f"{name}_seed{seed}", seed))
            results[code][seed] = shares
            print(f"{code} seed {seed}: {json.dumps(shares)} ({time.perf_counter() - begin:.0f} s)", flush=True)
    print(json.dumps({"benchmark": "mode_coverage", "date": time.strftime("%Y-%m-%d"), "steps": args.steps,
                      "backbone": args.backbone,
                      "settings": {f"{section}.{key}": value for section, key, value in args.set}, "images": IMAGES, "resolution": RESOLUTION,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
