"""python -m alae_tf.edit: latent editing of real images with a trained run (MLP or StyleALAE).

    directions   fit directions in W from labelled images, or import the official direction_*.npy
    list         the run's directions and how they were found
    apply        a strength sweep of one direction on images -> PNG
    mix          style mixing matrices of real images, one per layer range -> PNGs
    interpolate  interpolation strips between pairs of real images -> PNG
    score        edit success on MNIST: how often the shipped classifier reads a -> b edits as b,
                 against a random direction moved by the same distance
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae_tf.data.batches import to_model_range
from alae_tf.editing import directions as fitting
from alae_tf.editing import labelled as labels
from alae_tf.editing.labelled import data_path
from alae_tf.editing.arguments import OneLineParser, class_pair, noise_seed, positive_int, strength
from alae_tf.editing.figures import check_figure_size, strength_sweep, zoomed
from alae_tf.editing.images import held_out_warning
from alae_tf.editing.subjects import SUBJECTS_HELP, select_subjects
from alae_tf.editing.official import other_model_note, read_official_directions
from alae_tf.editing.outputs import check_output_dir, check_output_file, write_png, writing
from alae_tf.editing.success import edit_success, reconstructions_read_as
from alae_tf.editing.ranges import ALL, layer_ranges, mixing_range_names, parse_layer_range
from alae_tf.errors import ALAEError
from alae_tf.grids import ImageNoise, encode_in_calls, interpolation_grid, mixing_grid_of_styles
from alae_tf.inference import Sampler
from alae_tf.metrics.mnist_classifier import load_classifier, to_classifier_input
from alae_tf.run_dir import (checkpoint_step, existing_run, load_run, newest_intact_checkpoint, read_run_config,
                             run_checkpoint)
from alae_tf.stop_signals import interrupted_exit_code, signal_name, sigterm_raises_stopped
from serving.editing import edit_reach

# score warns below this fraction of the class's reconstructions read as the class (a 20-step run: 0)
POOR_RECONSTRUCTION = 0.5
SWEEP_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)  # default strengths, in units of the direction's reach
DEFAULT_STRENGTHS_HELP = ("default: 0, 1/4, 1/2, 3/4 and all of the direction's reach: 2 x its class_distance, "
                          "or for an official direction 40 x its original length, where the official demo's slider ends")
NOISE_SEED_HELP = ("seed of G's noise images, one draw for the whole figure, or none: no noise, as the export and "
                   "the studio render (default: 0; StyleALAE; figures holding a projection are rendered without noise)")
LAYERS_HELP = ("layer range: all (default), coarse, middle, fine or START:STOP (the MLP has one style input: every "
               "name is all)")


def parse_args(argv=None):
    parser = OneLineParser(prog="python -m alae_tf.edit", description=__doc__.split("\n\n")[0].removeprefix("python -m alae_tf.edit: "),
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
    sub.add_argument("--method", choices=fitting.METHODS, help="svm (default, as the official code) or mean")
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
    sub.add_argument("--steps", type=positive_int, default=8, help="points per row, both ends included (default 8)")
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


# --- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """The run a command works on."""

    config: object
    sampler: Sampler
    step: int
    name: str  # the run directory's name

    @property
    def checkpoint(self) -> tuple[str, int]:
        return self.name, self.step


def fit_command(args, run: Loaded):
    config, sampler = run.config, run.sampler
    out = args.out or fitting.run_directions_path(args.run)
    check_output_file(out)
    existing = fitting.load_directions(out, sampler.latent_dim) if out.is_file() else None
    if args.official:
        fitting_options = {"--images": args.images, "--only": args.only, "--pairs": args.pairs,
                           "--one-vs-rest": args.one_vs_rest, "--method": args.method,
                           "--orthogonalize": args.orthogonalize, "--count": args.count}
        if given := [option for option, value in fitting_options.items() if value]:
            raise ALAEError(f"{', '.join(given)}: for fitting directions; --official imports the files as they are")
        new = read_official_directions(args.official, sampler.latent_dim)
        if note := other_model_note(config.preset):
            print(note, file=sys.stderr)
    else:
        data = labelled_images(args, config)
        print(f"fitting on {data.description}")
        if data.attributes:
            if args.pairs or args.one_vs_rest:
                raise ALAEError("--pairs and --one-vs-rest are for classes; an attributes file gives one direction per "
                                "attribute (--only to choose)")
            tasks = fitting.attribute_tasks(data, list(dict.fromkeys(args.only)) if args.only else None)
        elif args.only:
            raise ALAEError("--only is for --attributes; for classes use --pairs or --one-vs-rest")
        else:
            tasks = fitting.one_vs_rest_tasks(data) if args.one_vs_rest else fitting.class_pair_tasks(data, args.pairs)
        fitting.check_tasks(tasks)
        print(f"encoding {len(data.train_labels)} training and {len(data.test_labels)} held-out images")
        codes = data.encoded(lambda images: encode_in_calls(sampler, images))
        tasks = [task.of_rows(codes.train_rows, codes.test_rows) for task in tasks]
        provenance = {"labels": data.description, "run": str(args.run.resolve()), "training_step": run.step}
        new = fitting.fit_directions(codes.train_codes, codes.test_codes, tasks, args.method or "svm", args.orthogonalize,
                                     provenance)
        if (args.method or "svm") == "svm":
            for note in fitting.better_by_mean(new, codes.train_codes, codes.test_codes, tasks):
                print(note, file=sys.stderr)
    directions = existing.merged(new) if existing else new
    with writing(out):
        directions.write(out)
    print_directions(new)
    print(f"written: {out} ({len(new.directions)} new or replaced, {len(directions.directions)} in all)")


def labelled_images(args, config):
    if args.attributes:
        return labels.from_attribute_table(args.attributes, args.images, config.model.image_shape, args.count,
                                           only=list(dict.fromkeys(args.only)) if args.only else None)
    if args.images:
        raise ALAEError("--images goes with --attributes (the folder its image paths are relative to)")
    if args.classes:
        return labels.from_class_folders(args.classes, config.model.image_shape, args.count)
    return labels.from_run_dataset(config, args.count)


def list_command(args):
    """Reads config.yaml and the checkpoint's name only: the networks (seconds to load for a large
    model) are not needed to list."""
    run = existing_run(args.run)
    checkpoint = run_checkpoint(run, args.checkpoint) if args.checkpoint else newest_intact_checkpoint(run)
    latent_dim = read_run_config(run).model.latent_dim
    print_directions(run_directions(args, latent_dim, checkpoint_step(checkpoint) if checkpoint else None))


def print_directions(directions):
    print(f"{'name':<20} {'method':<6} {'from -> to':<28} {'held-out acc':>12} {'class dist.':>11}")
    for d in directions.directions:
        accuracy, gap = d.info.get("held_out_accuracy"), d.info.get("class_distance")
        sides = f"{d.info.get('negative', '?')} -> {d.info.get('positive', '?')}"
        print(f"{d.name:<20} {d.info.get('method', '?'):<6} {sides:<28} "
              f"{'' if accuracy is None else f'{accuracy:.4f}':>12} {'' if gap is None else f'{gap:.3f}':>11}")


def apply_command(args, run: Loaded):
    config, sampler = run.config, run.sampler
    directions = run_directions(args, run.sampler.latent_dim, run.step)
    vector = direction_vector(directions, args.direction, args.directions)
    # a name from an older directions file may hold a '/': one file in RUN/edits all the same
    file_name = re.sub(r"[/\\\x00-\x1f]|^\.\.?$", "_", args.direction) + ".png"
    out = args.out or args.run / "edits" / file_name
    check_output_file(out, ".png", inputs=tuple(args.images))
    strengths = args.strengths or default_strengths(directions, args.direction)
    reach = direction_reach(directions, args.direction)
    if args.strengths and reach is not None and max(abs(s) for s in strengths) > reach:  # (the default sweep ends there)
        print(f"note: strengths beyond +-{reach:.3g} (this direction's reach, where the studio's slider "
              "ends and the default sweep stops) move codes far from any the encoder gives; expect artefacts", file=sys.stderr)
    start, stop = parse_layer_range(args.layers, layer_ranges(sampler))
    subjects = select_subjects(args.images, config, sampler, run.checkpoint, check_count=lambda count: check_figure_size(
        count * (1 + len(strengths)), sampler.image_shape, args.zoom))
    grid = strength_sweep(sampler, subjects.images, subjects.styles, vector, strengths, start, stop,
                          noise=figure_noise(args, sampler, subjects))
    write_png(zoomed(grid, args.zoom), out)
    print(f"{args.direction} on style inputs [{start}, {stop}) at strengths {', '.join(f'{s:g}' for s in strengths)} "
          f"for {len(subjects)} image(s): {out}")


def mix_command(args, run: Loaded):
    config, sampler = run.config, run.sampler
    out_dir = args.out_dir or args.run / "edits"
    check_output_dir(out_dir, inputs=(*args.sources, *args.destinations))
    ranges = layer_ranges(sampler)
    if sampler.num_styles == 1:
        print(f"note: this generator ({config.model.backbone}) has one style input: a mix takes all of the source's "
              "w, so every mixed cell is the source's reconstruction (style mixing needs a StyleALAE run)", file=sys.stderr)
    names = args.layers or mixing_range_names(ranges)
    chosen = {name: parse_layer_range(name, ranges) for name in names}
    def mixing_cells(count_s, count_d):  # every range's grid is rendered before the first is written
        return len(chosen) * (count_s + 1) * (count_d + 1)

    sources = select_subjects(args.sources, config, sampler, run.checkpoint, check_count=lambda count: check_figure_size(
        mixing_cells(count, 1), sampler.image_shape, args.zoom))
    destinations = select_subjects(args.destinations, config, sampler, run.checkpoint, check_count=lambda count: check_figure_size(
        mixing_cells(len(sources), count), sampler.image_shape, args.zoom))
    noise = figure_noise(args, sampler, sources, destinations)
    grids = mixing_grid_of_styles(sampler, sources.styles, destinations.styles, chosen, noise=noise)
    for name, grid in grids.items():
        path = out_dir / f"mix_{name.replace(':', '-')}.png"
        write_png(zoomed(grid, args.zoom), path)
        print(f"{name}, style inputs [{chosen[name][0]}, {chosen[name][1]}): {path}")


def interpolate_command(args, run: Loaded):
    config, sampler = run.config, run.sampler
    if args.steps < 2:
        raise ALAEError("--steps must be at least 2 (the two ends)")
    out = args.out or args.run / "edits" / "interpolation.png"
    check_output_file(out, ".png", inputs=(*args.first, *args.last))
    def check_pairs(count):
        check_figure_size(count * (args.steps + 2), sampler.image_shape, args.zoom)

    first = select_subjects(args.first, config, sampler, run.checkpoint, check_count=check_pairs)
    last = select_subjects(args.last, config, sampler, run.checkpoint, check_count=check_pairs)
    if len(first) != len(last):
        raise ALAEError(f"--from selects {len(first)} image(s) but --to {len(last)}; they are paired in order")
    noise = figure_noise(args, sampler, first, last)
    own = isinstance(noise, ImageNoise)  # each image's own noise images (or none), not one draw
    grid = interpolation_grid(sampler, image_pairs=(to_model_range(first.images), to_model_range(last.images)),
                              image_codes=(first.styles, last.styles), steps=args.steps,
                              noise_seed=None if own else noise, image_noise=(first.noise, last.noise) if own else None)
    write_png(zoomed(grid, args.zoom), out)
    print(f"{len(first)} interpolation(s) of {args.steps} points: {out}")


def score_command(args, run: Loaded):
    config, sampler = run.config, run.sampler
    if config.data.dataset != "mnist":
        raise ALAEError(f"score reads edits with the MNIST digit classifier; this run's dataset is {config.data.dataset}")
    to_classifier_input(np.zeros((1, *config.model.image_shape), np.uint8))  # its sizes, before any image is edited
    directions = run_directions(args, run.sampler.latent_dim, run.step)
    vector = direction_vector(directions, args.direction, args.directions)
    info = next(d.info for d in directions.directions if d.name == args.direction)
    data = labels.open_run_data(config)
    names = labels.dataset_class_names(config.data.dataset, data.test_labels)
    if info.get("negative") not in names or info.get("positive") not in names:
        raise ALAEError(f"{args.direction} is not a class-pair direction of this dataset (classes {', '.join(names)})")
    source, target = names.index(info["negative"]), names.index(info["positive"])
    images = data.test_images(config.model.image_shape[0])[data.test_labels == source][: args.count]
    strengths = args.strengths or default_strengths(directions, args.direction)
    start, stop = parse_layer_range(args.layers, layer_ranges(sampler))
    classifier = load_classifier()
    fractions = edit_success(sampler, classifier, images, vector, target, strengths, start=start, stop=stop, seed=args.seed)
    kept = reconstructions_read_as(sampler, classifier, images, source)
    print(f"{len(images)} held-out images of class {info['negative']} edited along {args.direction} "
          f"(style inputs [{start}, {stop})); fraction the MNIST classifier reads as {info['positive']}:")
    print(f"{'strength':>9} {'direction':>10} {'random (mean of 8)':>18}")
    for s, hit, chance in zip(strengths, fractions["direction"], fractions["random"]):
        print(f"{s:>9.3g} {hit:>10.3f} {chance:>18.3f}")
    print(f"their reconstructions G(E(x)) read as {info['negative']}: {kept:.3f}")
    if kept < POOR_RECONSTRUCTION:
        print(f"warning: only {kept:.0%} of the reconstructed {info['negative']}s are read as {info['negative']}: this "
              f"run reconstructs the class poorly (trained {run.step} steps), so the table says little about the "
              "direction", file=sys.stderr)


# --- helpers ------------------------------------------------------------------------------------


def figure_noise(args, sampler, *subjects) -> int | ImageNoise:
    """What a figure of these groups of images renders with: --noise-seed's draw, or, when a
    projection is among the images, each image's own noise images (the groups' ImageNoise one
    after the other): a projection's refined by `project --noise`, none for the others, as
    projections are fitted."""
    if not any(group.projected for group in subjects):
        return args.noise_seed
    noise = ImageNoise.concat([group.noise for group in subjects])
    if noise.given.any():
        print("note: a projection file with noise images (project --noise) is among the images: they are rendered "
              "with them, the other images without G's noise (--noise-seed is not used)", file=sys.stderr)
    elif sampler.noise_shapes:
        print("note: a projection file is among the images, so the figure is rendered without G's noise, as "
              "projections are fitted (--noise-seed is not used)", file=sys.stderr)
    return noise


def run_directions(args, latent_dim: int, step: int | None):
    """The directions to edit with (--directions, else the run's), with a note when they were
    fitted on another run's or checkpoint's codes than the one of `step` (None: the run has none yet)."""
    path = args.directions or fitting.run_directions_path(args.run)
    if args.directions and not path.is_file():
        raise ALAEError(f"{path}: no such directions file")
    if not path.is_file():
        raise ALAEError(f"{path}: the run has no directions yet; fit some with `python -m alae_tf.edit directions --run RUN`")
    directions = fitting.load_directions(path, latent_dim)
    if step is not None and (note := fitting.fitted_elsewhere_note(directions, path, args.run, step)):
        print(note, file=sys.stderr)
    return directions


def direction_vector(directions, name, directions_file: Path | None) -> np.ndarray:
    """The named direction's vector; `directions_file`: the --directions file they were read from (None: the run's)."""
    if name not in directions.names:
        known = ", ".join(directions.names) or "none"
        where = f"the file {directions_file} has {known}" if directions_file else f"the run has {known} (in its {fitting.RUN_FILE})"
        raise ALAEError(f"unknown direction {name!r}; {where}")
    return directions.vector(name)


def direction_reach(directions, name) -> float | None:
    """How far the named direction's edits go by default (serving.editing.edit_reach)."""
    return edit_reach(next(d for d in directions.directions if d.name == name))


def default_strengths(directions, name) -> list[float]:
    reach = direction_reach(directions, name)
    if reach is None:
        raise ALAEError(f"{name} has no class_distance or official_norm to scale the default strengths by; "
                        "pass --strengths")
    return [round(fraction * reach, 3) for fraction in SWEEP_FRACTIONS]


COMMANDS = {"directions": fit_command, "apply": apply_command, "mix": mix_command,
            "interpolate": interpolate_command, "score": score_command}


# The commands' arguments that take image specs (held-out:N among them).
SUBJECT_ARGUMENTS = {"apply": ("images",), "mix": ("sources", "destinations"), "interpolate": ("first", "last")}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with sigterm_raises_stopped():
            if args.command == "list":
                list_command(args)
            else:
                config, model = load_run(args.run, args.checkpoint)
                if args.data_path is not None:
                    config.data.path = data_path(args.data_path)
                specs = [spec for name in SUBJECT_ARGUMENTS.get(args.command, ()) for spec in getattr(args, name)]
                if warning := held_out_warning(specs, config, args.run):
                    print(warning, file=sys.stderr)
                COMMANDS[args.command](args, Loaded(config, Sampler.from_model(model), model.step, args.run.resolve().name))
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # files are written whole (PNGs and directions.json: a rename) or not at all
        print(f"\ninterrupted ({signal_name(exc)}): each file named above is complete; no other was written",
              file=sys.stderr)
        return interrupted_exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
