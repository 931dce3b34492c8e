"""python -m alae_tf.edit: latent editing of real images with a trained run (MLP or StyleALAE).

    directions   fit directions in W from labelled images, or import the official direction_*.npy
    list         the run's directions and how they were found
    apply        a strength sweep of one direction on images -> PNG
    mix          style mixing matrices of real images, one per layer range -> PNGs
    interpolate  interpolation strips between pairs of real images -> PNG
    score        edit success on MNIST: how often the shipped classifier reads a -> b edits as b,
                 against a random direction moved by the same distance

This module reads the command line; alae_tf.editing.edit_commands does the work (it imports
TensorFlow, which takes seconds: --help and a mistyped flag are answered before).
"""

import argparse
import sys
from pathlib import Path

from alae_tf.editing.arguments import SUBJECTS_HELP, class_pair, noise_seed, positive_int, strength
from alae_tf.editing.directions import METHODS
from alae_tf.editing.ranges import ALL
from alae_tf.run_layout import run_problem
from serving.command_line import CommandParser, number

DEFAULT_STRENGTHS_HELP = ("default: 0, 1/4, 1/2, 3/4 and all of the direction's reach: 2 x its class_distance, "
                          "or for an official direction 40 x its original length, where the official demo's slider ends")
NOISE_SEED_HELP = ("seed of G's noise images, one draw for the whole figure, or none: no noise, as the export and "
                   "the studio render (default: 0; StyleALAE; figures holding a projection are rendered without noise)")
LAYERS_HELP = ("layer range: all (default), coarse, middle, fine or START:STOP (the MLP has one style input: every "
               "name is all)")


def parse_args(argv=None):
    parser = CommandParser(prog="python -m alae_tf.edit", description=__doc__.split("\n\n")[0].removeprefix("python -m alae_tf.edit: "),
                           epilog="examples:\n"
                           "  python -m alae_tf.edit directions --run runs/mnist --pairs 3:8 4:9\n"
                           "  python -m alae_tf.edit apply --run runs/mnist --direction 3_to_8 --images held-out:0-6:3\n"
                           "  python -m alae_tf.edit interpolate --run runs/mnist --from held-out:0-4 --to held-out:4-8\n"
                           "Run `python -m alae_tf.edit COMMAND --help` for a command's options.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text, reads_data=True):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--run", type=Path, required=True, help="run directory written by python -m alae_tf.train")
        sub.add_argument("--checkpoint", help="checkpoint to use instead of the latest: RUN/checkpoints/ckpt-N, or just ckpt-N")
        if reads_data:
            sub.add_argument("--data-path", help="where the run's data is now, if it moved (default: data.path in the "
                             "run's config.yaml); read for held-out:N and the run's labels")
        return sub

    sub = command("directions", "Fit unit directions in W on the encoder's codes of labelled images (a linear SVM's normal, "
                  "or the difference of class means) and save them with the run (RUN/directions.json; same names are replaced). "
                  "Labels: the run's dataset (MNIST, Fashion-MNIST), --classes or --attributes; or --official files.")
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--classes", type=Path, help="a folder with one subfolder of images per class")
    source.add_argument("--attributes", type=Path,
                        help="a CSV (header `image,ATTR...`, rows `path,values`, > 0: has it), or CelebA's attribute list "
                        "(list_attr_celeba.txt, CelebAMask-HQ-attribute-anno.txt) as it comes; one direction per attribute")
    source.add_argument("--official", type=Path, nargs="+", help="the official ALAE's direction_<k>.npy files or their folder")
    sub.add_argument("--images", type=Path, help="folder the --attributes file's image paths are relative to (default: its own)")
    tasks = sub.add_mutually_exclusive_group()
    tasks.add_argument("--only", nargs="+", metavar="ATTR", help="with --attributes: these attributes (default: every one)")
    tasks.add_argument("--pairs", type=class_pair, nargs="+", metavar="A:B",
                       help="class pairs, one direction A -> B each, named A_to_B (default: every pair A < B)")
    tasks.add_argument("--one-vs-rest", action="store_true", help="one direction per class K, all others -> K, named to_K")
    sub.add_argument("--method", choices=METHODS, help="svm (default, as the official code) or mean")
    sub.add_argument("--orthogonalize", action="store_true",
                     help="make each direction orthogonal to the ones before it (Gram-Schmidt in the order fitted)")
    sub.add_argument("--count", type=positive_int,
                     help="images to use (default: all): the first N training images of the run's dataset, the first N "
                     "rows of --attributes, or the first N images of each --classes folder")
    sub.add_argument("--out", type=Path, help="directions file to write or extend (default: RUN/directions.json, the "
                     "one export carries; list, apply and score read another with --directions)")

    def reads_directions(sub):
        sub.add_argument("--directions", type=Path, metavar="FILE",
                         help="directions file to read (default: RUN/directions.json); e.g. one written by directions --out")
        return sub

    reads_directions(command("list", "List the run's directions with their method, classes and held-out accuracy (the mean "
                                     "of the two classes' accuracies: 0.5 is chance however unequal their counts).", reads_data=False))

    sub = reads_directions(command("apply", "Edit images along a direction at several strengths: one row per image, the "
                                   "image then its edits."))
    sub.add_argument("--direction", required=True, help="a direction name (see `list`)")
    sub.add_argument("--images", nargs="+", required=True, help=SUBJECTS_HELP)
    sub.add_argument("--strengths", type=strength, nargs="+",
                     help=f"distances to move w along the unit direction ({DEFAULT_STRENGTHS_HELP})")
    sub.add_argument("--layers", default=ALL, help=LAYERS_HELP)
    sub.add_argument("--noise-seed", type=noise_seed, default=0, help=NOISE_SEED_HELP)
    sub.add_argument("--zoom", type=positive_int, default=1, help="enlarge the PNG by this factor, nearest neighbour (default 1)")
    sub.add_argument("--out", type=Path, help="PNG to write (default: RUN/edits/DIRECTION.png)")

    sub = command("mix", "Style mixing of real images: per layer range a matrix whose cell (j, i) renders destination j "
                  "with that range's style inputs from source i (first row/column: the unmixed reconstructions).")
    sub.add_argument("--sources", nargs="+", required=True, help=SUBJECTS_HELP)
    sub.add_argument("--destinations", nargs="+", required=True, help=SUBJECTS_HELP)
    sub.add_argument("--layers", nargs="+", help="layer ranges (default: coarse, middle, fine where the generator has them, else "
                     "all; the MLP has one style input, so each cell is the source's reconstruction)")
    sub.add_argument("--noise-seed", type=noise_seed, default=0, help=NOISE_SEED_HELP)
    sub.add_argument("--zoom", type=positive_int, default=1, help="enlarge the PNG by this factor, nearest neighbour (default 1)")
    sub.add_argument("--out-dir", type=Path, help="folder for mix_RANGE.png (default: RUN/edits)")

    sub = command("interpolate", "Interpolate in W between pairs of real images: one row per pair, the two images framing "
                  "the decoded points from E(a) to E(b) (or from a projection's codes).")
    sub.add_argument("--from", dest="first", nargs="+", required=True, help=SUBJECTS_HELP)
    sub.add_argument("--to", dest="last", nargs="+", required=True, help=SUBJECTS_HELP + "; as many as --from")
    sub.add_argument("--steps", type=number(int, 2), default=8, help="points per row, both ends included (default 8)")
    sub.add_argument("--noise-seed", type=noise_seed, default=0, help=NOISE_SEED_HELP)
    sub.add_argument("--zoom", type=positive_int, default=1, help="enlarge the PNG by this factor, nearest neighbour (default 1)")
    sub.add_argument("--out", type=Path, help="PNG to write (default: RUN/edits/interpolation.png)")

    sub = reads_directions(command("score", "Edit success on MNIST: held-out digits of class A edited along A_to_B, read by "
                                   "the shipped MNIST classifier; prints the fraction read as B per strength, and the same "
                                   "averaged over 8 random unit directions (the chance level), then the fraction of their plain reconstructions "
                                   "read as A (a warning below a half: the table then says little)."))
    sub.add_argument("--direction", required=True, help="a class-pair direction A_to_B of the run")
    sub.add_argument("--strengths", type=strength, nargs="+", help=DEFAULT_STRENGTHS_HELP)
    sub.add_argument("--layers", default=ALL, help=LAYERS_HELP)
    sub.add_argument("--count", type=positive_int, help="held-out images of class A to edit (default: all)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the random directions (default 0)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if problem := run_problem(args.run):  # told before TensorFlow's import
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from alae_tf.editing import edit_commands  # TensorFlow's import: after the command line was read

    return edit_commands.run(args)


if __name__ == "__main__":
    sys.exit(main())
