"""The subcommands of `python -m alae_tf.edit` (alae_tf/edit.py reads its command line)."""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae_tf.data.batches import to_model_range
from alae_tf.data.datasets import given_data_path
from alae_tf.editing import directions as fitting
from alae_tf.editing import labelled as labels
from alae_tf.editing.figures import check_figure_size, strength_sweep, zoomed
from alae_tf.editing.images import held_out_warning
from alae_tf.editing.subjects import select_subjects
from alae_tf.editing.official import other_model_note, read_official_directions
from alae_tf.editing.outputs import check_output_dir, check_output_file, write_png, writing
from alae_tf.editing.success import edit_success, reconstructions_read_as
from alae_tf.editing.ranges import layer_ranges, mixing_range_names, parse_layer_range
from alae_tf.errors import ALAEError
from alae_tf.grids import ImageNoise, encode_in_calls, interpolation_grid, mixing_grid_of_styles
from alae_tf.inference import Sampler
from alae_tf.metrics.mnist_classifier import load_classifier, to_classifier_input
from alae_tf.run_dir import (checkpoint_step, existing_run, load_run, newest_intact_checkpoint, read_run_config,
                             run_checkpoint)
from alae_tf.run_layout import RunDir
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving.editing import edit_reach

# score warns below this fraction of the class's reconstructions read as the class (a 20-step run: 0)
POOR_RECONSTRUCTION = 0.5
SWEEP_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)  # default strengths, in units of the direction's reach


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
    out = args.out or RunDir(args.run).directions_file
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
    out = args.out or RunDir(args.run).edits / file_name
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
    out_dir = args.out_dir or RunDir(args.run).edits
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
    out = args.out or RunDir(args.run).edits / "interpolation.png"
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
    path = args.directions or RunDir(args.run).directions_file
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
        where = f"the file {directions_file} has {known}" if directions_file else f"the run has {known} (in its directions.json)"
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


def run(args) -> int:
    """Run the subcommand `args` (the command line, read by alae_tf.edit) name; exit code 0, 2 for an
    error, 130, 143 or 129 when stopped."""
    try:
        with stop_signals_raise_stopped():
            if args.command == "list":
                list_command(args)
            else:
                config, model = load_run(args.run, args.checkpoint)
                if args.data_path is not None:
                    config.data.path = given_data_path(args.data_path)
                specs = [spec for name in SUBJECT_ARGUMENTS.get(args.command, ()) for spec in getattr(args, name)]
                if warning := held_out_warning(specs, config, args.run):
                    print(warning, file=sys.stderr)
                COMMANDS[args.command](args, Loaded(config, Sampler.from_model(model), model.step, args.run.resolve().name))
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # files are written whole (PNGs and directions.json: a rename) or not at all
        print(f"\ninterrupted ({signal_name(exc)}): no file was left half-written (each one written is named above)",
              file=sys.stderr)
        return interrupted_exit_code(exc)
    return 0
