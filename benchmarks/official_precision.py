"""How close a converted official model's encoder and generator are to the official code's, at a
published size, in float32 and in float64.

    python benchmarks/official_precision.py --official official_master --torch-python torchenv/bin/python
    python benchmarks/official_precision.py ... --model celeba-hq256

A child python with torch builds the official networks of --model (the official checkout's
configs/<model>.yaml, branch master) with random weights: the official initialisation, each
parameter then moved by N(0, 0.05^2) so that no bias is zero. It writes them as an official
checkpoint (live and smoothed copies alike) and runs the official encoder in float32 and float64
on four images (two smooth, two uniform noise), and the generator, noise off (its deterministic
stand-in), on two normal w. This process converts the checkpoint (`python -m alae_tf.convert`)
and runs the converted nets in float32 and, with the same weights, in float64. The float64 runs
tell a difference of the models from float32 rounding. Prints one line per comparison (the
largest |difference| over the batch), JSON on the last line.
"""

import argparse
import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from serving.command_line import CommandParser, folder_to_write, python_with

# The child: the official nets, their checkpoint, and E(x) and G(w) in float32 and float64.
CHILD = r"""
import sys
import numpy as np
import torch
official, config_file, out = sys.argv[1:4]
sys.path.insert(0, official)
import net
from defaults import get_cfg_defaults
cfg = get_cfg_defaults()
cfg.merge_from_file(config_file)
m = cfg.MODEL
torch.manual_seed(0)
generator = torch.Generator().manual_seed(1)
kwargs = dict(startf=m.START_CHANNEL_COUNT, maxf=m.MAX_CHANNEL_COUNT, layer_count=m.LAYER_COUNT,
              latent_size=m.LATENT_SPACE_SIZE, channels=m.CHANNELS)
nets = {
    "discriminator": net.ENCODERS[m.ENCODER](**kwargs),
    "generator": net.GENERATORS[m.GENERATOR](**kwargs),
    "mapping_tl": net.MAPPINGS[m.MAPPING_D](latent_size=m.LATENT_SPACE_SIZE, dlatent_size=m.LATENT_SPACE_SIZE,
                                            mapping_fmaps=m.LATENT_SPACE_SIZE, mapping_layers=3),
    "mapping_fl": net.MAPPINGS[m.MAPPING_F](num_layers=2 * m.LAYER_COUNT, latent_size=m.LATENT_SPACE_SIZE,
                                            dlatent_size=m.LATENT_SPACE_SIZE, mapping_fmaps=m.LATENT_SPACE_SIZE,
                                            mapping_layers=m.MAPPING_LAYERS),
}
with torch.no_grad():
    for module in nets.values():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
        module.eval()
side = 2 ** (m.LAYER_COUNT + 1)
rng = np.random.default_rng(0)
low = torch.tensor(rng.standard_normal((2, m.CHANNELS, 32, 32)))
smooth = torch.nn.functional.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)
images = torch.cat([(smooth / smooth.abs().max()).clamp(-1, 1), torch.tensor(rng.uniform(-1, 1, (2, m.CHANNELS, side, side)))])
w = torch.tensor(rng.standard_normal((2, m.LATENT_SPACE_SIZE)))
styles = w[:, None].repeat(1, 2 * m.LAYER_COUNT, 1)
encoder, decoder = nets["discriminator"], nets["generator"]
with torch.no_grad():
    w32 = encoder(images.float(), m.LAYER_COUNT - 1, 1.0)[:, 0].numpy()
    x32 = decoder(styles.float(), m.LAYER_COUNT - 1, 1.0, False).numpy().transpose(0, 2, 3, 1)
    w64 = encoder.double()(images, m.LAYER_COUNT - 1, 1.0)[:, 0].numpy()
    x64 = decoder.double()(styles, m.LAYER_COUNT - 1, 1.0, False).numpy().transpose(0, 2, 3, 1)
    encoder.float(), decoder.float()
state = {name: module.state_dict() for name, module in nets.items()}
torch.save({"models": {**state, **{name + "_s": value for name, value in state.items()},
                       "dlatent_avg": {"buff": torch.zeros(2 * m.LAYER_COUNT, m.LATENT_SPACE_SIZE)}}, "auxiliary": {}},
           out + "/model.pth")
np.savez(out + "/official.npz", images=images.numpy().transpose(0, 2, 3, 1), w32=w32, w64=w64, w=w.numpy(),
         x32=x32, x64=x64)
"""


def main():
    parser = CommandParser(prog="python benchmarks/official_precision.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True,
                        help="a checkout of the official code (github:podgorskiy/ALAE, branch master)")
    parser.add_argument("--torch-python", required=True, type=python_with("torch", "yacs", "numpy"), help="a python with torch, yacs and numpy (the official code's needs)")
    parser.add_argument("--model", default="ffhq", choices=["ffhq", "celeba-hq256", "bedroom", "celeba"],
                        help="a published model's architecture (default: ffhq, 1024x1024)")
    parser.add_argument("--work", type=folder_to_write, help="directory for the checkpoint and the converted run (default: a temporary one, removed at the end)")
    args = parser.parse_args()
    config_file = args.official / "configs" / f"{args.model}.yaml"
    if not (args.official / "net.py").is_file() or not config_file.is_file():
        parser.error(f"--official {args.official}: no net.py and configs/{args.model}.yaml there (a checkout of branch master)")

    import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
    import keras
    import tensorflow as tf

    from alae_tf import convert
    from alae_tf.model import build_alae
    from alae_tf.run_dir import load_run

    work = args.work or Path(tempfile.mkdtemp(prefix="official_precision_"))
    if args.work is None:  # a temporary folder: removed at exit
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    print(f"the official {args.model} networks, random weights, in {work} (torch)", flush=True)
    subprocess.run([args.torch_python, "-c", CHILD, str(args.official.resolve()), str(config_file.resolve()), str(work)],
                   check=True)
    official = np.load(work / "official.npz")
    if convert.main(["--checkpoint", str(work / "model.pth"), "--config", str(config_file), "--out", str(work / "run")]) != 0:
        sys.exit(1)
    config, model = load_run(work / "run")[:2]
    keras.mixed_precision.set_global_policy("float64")
    model64 = build_alae(config)
    keras.mixed_precision.set_global_policy("float32")
    report = {"benchmark": "official_precision", "model": args.model}
    for net, inputs, key in (("encoder", official["images"], "w"), ("generator", official["w"], "x")):
        ours, ours_float64 = getattr(model, net), getattr(model64, net)
        ours_float64.set_weights([v.numpy().astype(np.float64) for v in ours.weights])
        ours32 = ours(tf.constant(inputs, tf.float32)).numpy()
        ours64 = ours_float64(tf.constant(inputs, tf.float64)).numpy()
        official32, official64 = official[f"{key}32"], official[f"{key}64"]
        largest = float(np.abs(official64).max())
        report[f"{net}_largest_abs_output"] = float(f"{largest:.4g}")
        for name, a, b in (("ours64_vs_official64", ours64, official64), ("ours32_vs_ours64", ours32, ours64),
                           ("official32_vs_official64", official32, official64), ("ours32_vs_official32", ours32, official32)):
            report[f"{net}_{name}"] = float(f"{np.abs(a - b).max():.3g}")
            print(f"{net}, {name.replace('_', ' ')}: max |difference| {report[f'{net}_{name}']:.3g} "
                  f"(largest |output| {largest:.3g})")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
