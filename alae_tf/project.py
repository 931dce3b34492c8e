"""python -m alae_tf.project: find latents that reconstruct real images better than the encoder.

Starts from w = E(x) and refines it (or per-layer styles w+, and G's noise) by Adam on
LPIPS + MSE against each image; prints both distances for the encoder alone and after the
steps, and writes OUT/projection.png (per image of the first 64: the image, G(E(x)), the
projection) and OUT/projection.npz (every image's styles [N, num_styles, latent], the images, the
distances, noise_00... when optimised; serving/projection_file.py): the styles are the input of
an export's `decode_styles` (with the noise, `decode_styles_noise`); `python -m alae_tf.edit`'s
apply, mix and interpolate take the file among their images, and the studio of
`python -m serving.http --studio` opens it, to edit the projections.

This module reads the command line; alae_tf.editing.project_command does the work (it imports
TensorFlow, which takes seconds: --help and a mistyped flag are answered before).
"""

import argparse
import sys
from pathlib import Path

from alae_tf.editing.arguments import IMAGES_HELP, positive_int
from alae_tf.run_layout import run_problem
from serving.command_line import CommandParser, number


def parse_args(argv=None):
    parser = CommandParser(prog="python -m alae_tf.project", description=__doc__.split("\n\n")[1].replace("\n", " "),
                           epilog="examples:\n"
                           "  python -m alae_tf.project --run runs/mnist --images held-out:16\n"
                           "  python -m alae_tf.project --run runs/celeba_hq256 --images my_photos --per-layer --noise "
                           "--out-dir my_photos_projected",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory written by python -m alae_tf.train")
    parser.add_argument("--checkpoint", help="checkpoint to use instead of the latest: RUN/checkpoints/ckpt-N, or just ckpt-N")
    parser.add_argument("--data-path", help="where the run's data is now, if it moved (default: data.path in the run's "
                        "config.yaml); read for held-out:N")
    parser.add_argument("--images", nargs="+", required=True, help=IMAGES_HELP)
    parser.add_argument("--steps", type=number(int, 0), default=200, help="Adam steps (default 200; 0: the encoder alone)")
    parser.add_argument("--learning-rate", type=number(float, 0, inclusive=False), default=0.01, help="Adam's initial learning rate, cosine-decayed to 0 (default 0.01)")
    parser.add_argument("--mse-weight", type=number(float, 0), default=1.0, help="weight of the pixel MSE beside LPIPS (default 1)")
    parser.add_argument("--per-layer", action="store_true", help="refine one w per style input of G (w+) instead of one w")
    parser.add_argument("--noise", action="store_true", help="refine G's noise images too (StyleALAE, started from zero; the MLP has none)")
    parser.add_argument("--noise-weight", type=number(float, 0), default=1.0, help="weight of the mean squared noise penalty (default 1)")
    parser.add_argument("--batch-size", type=positive_int,
                        help="images projected at once (default 16 up to 128x128, 4 at 256x256, 1 from 512x512: each "
                             "image holds G's and LPIPS's activations and their gradients, ~0.6 GB at 256x256 and "
                             "~2 GB at 1024x1024 for the official models; each image's projection is independent of the "
                             "others in its batch, so this sets memory and speed, and results only up to float "
                             "rounding); the files are written as projection.partial.png/.npz at most once a "
                             "minute and on Ctrl-C, and renamed to projection.png/.npz when every image is done")
    parser.add_argument("--out-dir", type=Path, help="folder for projection.png and projection.npz (default: RUN/projections)")
    parser.add_argument("--zoom", type=positive_int, default=1, help="enlarge the PNG by this factor, nearest neighbour (default 1)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if problem := run_problem(args.run):  # told before TensorFlow's import
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from alae_tf.editing import project_command  # TensorFlow's import: after the command line was read

    return project_command.run(args)


if __name__ == "__main__":
    sys.exit(main())
