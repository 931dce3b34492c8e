"""Directions in W from labelled images: the official `principal_directions` method (a linear
SVM's normal), fitted on the encoder's codes w = E(x) of real images.

A task splits images into a negative and a positive side: a class pair a -> b (a negative, b
positive), one class against all the others, or a binary attribute. For each task a linear
boundary w . n = c is fitted on the training codes:

- "svm": scikit-learn's LinearSVC (C = 1, primal, as the official find_principal_directions.py),
  the two sides weighted to count equally;
- "mean": n along the difference of the two sides' mean codes, c halfway between the means.

The direction is n / |n|, pointing from the negative side to the positive one. Its held-out
accuracy is the boundary's mean per-side accuracy on the held-out codes (0.5 = chance).
Orthogonalisation (Gram-Schmidt, in the tasks' order) removes from each direction its components
along the directions before it, so that moving along it leaves their projections unchanged; the
accuracy reported stays that of the fitted boundary.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae_tf.errors import ALAEError
from alae_tf.run_layout import RunDir
from serving.editing import Direction, DirectionSet, DirectionsError

METHODS = ("svm", "mean")
SVM_C = 1.0
SVM_MAX_ITER = 10000
MAX_NAME_BYTES = 251  # NAME.png within the 255 bytes of a file name (Linux, macOS, Windows)


@dataclass(frozen=True)
class Task:
    name: str
    negative: str
    positive: str
    train_side: np.ndarray  # per training image: 1 positive, 0 negative, -1 not used
    test_side: np.ndarray

    def of_rows(self, train_rows, test_rows) -> Task:
        """The task on these training and held-out images only (the readable ones)."""
        return dataclasses.replace(self, train_side=self.train_side[train_rows], test_side=self.test_side[test_rows])


def class_pair_tasks(labelled, pairs) -> list[Task]:
    """One task per (a, b) class-name pair, named "a_to_b"; pairs None: every pair a < b in class order."""
    names = list(labelled.names)
    if pairs is None:
        pairs = list(itertools.combinations(names, 2))
    tasks = []
    for a, b in pairs:
        ia, ib = _class_index(names, a), _class_index(names, b)
        if ia == ib:
            raise ALAEError(f"class pair {a}:{b} names the same class twice")
        tasks.append(Task(f"{a}_to_{b}", a, b, _sides(labelled.train_labels == ia, labelled.train_labels == ib),
                          _sides(labelled.test_labels == ia, labelled.test_labels == ib)))
    return tasks


def one_vs_rest_tasks(labelled, classes=None) -> list[Task]:
    """One task per class k (default: every class), named "to_k": all other classes -> k."""
    names = list(labelled.names)
    tasks = []
    for k in names if classes is None else classes:
        index = _class_index(names, k)
        tasks.append(Task(f"to_{k}", f"not {k}", k, _sides(labelled.train_labels != index, labelled.train_labels == index),
                          _sides(labelled.test_labels != index, labelled.test_labels == index)))
    return tasks


def attribute_tasks(labelled, attributes=None) -> list[Task]:
    """One task per attribute (default: every one), named by it: images without it -> images with it."""
    names = list(labelled.names)
    tasks = []
    for name in names if attributes is None else attributes:
        column = _class_index(names, name, kind="attribute")
        train, test = labelled.train_labels[:, column], labelled.test_labels[:, column]
        tasks.append(Task(name, f"not {name}", name, _sides(~train, train), _sides(~test, test)))
    return tasks


def _class_index(names, name, kind="class") -> int:
    if name not in names:
        raise ALAEError(f"unknown {kind} {name!r}; the labels have {', '.join(names)}")
    return names.index(name)


def _sides(negative, positive) -> np.ndarray:
    return np.where(positive, 1, np.where(negative, 0, -1)).astype(np.int8)


def fit_boundary(codes, sides, method) -> tuple[np.ndarray, float]:
    """(unit normal n, offset c) of the boundary w . n = c between sides 0 and 1 (rows with side -1 ignored)."""
    used = sides >= 0
    x, y = codes[used], sides[used]
    if method == "svm":
        from sklearn.svm import LinearSVC  # (1.8 s to import: not for the command's --help)

        svm = LinearSVC(C=SVM_C, dual=False, max_iter=SVM_MAX_ITER, class_weight="balanced").fit(x, y)
        normal, offset = svm.coef_[0], -svm.intercept_[0]
    elif method == "mean":
        negative, positive = x[y == 0].mean(axis=0), x[y == 1].mean(axis=0)
        normal, offset = positive - negative, float((positive - negative) @ (positive + negative) / 2)
    else:
        raise ALAEError(f"unknown method {method!r}; choose {' or '.join(METHODS)}")
    norm = np.linalg.norm(normal)
    if not norm > 0:
        raise ALAEError("the two sides' codes cannot be told apart (the fitted normal is zero)")
    return normal / norm, float(offset / norm)


def held_out_accuracy(normal, offset, codes, sides) -> float:
    """Mean over the two sides of the fraction of codes on that side of w . n = c."""
    positive = codes @ normal > offset
    return float(np.mean([np.mean(positive[sides == 1]), np.mean(~positive[sides == 0])]))


def better_by_mean(directions: DirectionSet, train_codes, test_codes, tasks: list[Task], margin=0.01) -> list[str]:
    """Notes for the SVM directions whose tasks the "mean" boundary separates better on the held-out
    codes, by more than `margin`: with noisy labels (an audit's colour labels on some grayscale
    images) the SVM's normal tilts toward the mislabelled codes (held-out 0.916 against 0.990)."""
    notes = []
    for task, direction in zip(tasks, directions.directions):
        svm_accuracy = direction.info["held_out_accuracy"]
        normal, offset = fit_boundary(train_codes, task.train_side, "mean")
        mean_accuracy = held_out_accuracy(normal, offset, test_codes, task.test_side)
        if mean_accuracy > svm_accuracy + margin:
            notes.append(f"note: {task.name}: --method mean separates the held-out images better ({mean_accuracy:.4f} "
                         f"against the SVM's {svm_accuracy:.4f}; noisy labels favour it)")
    return notes


def orthogonalized(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """Gram-Schmidt in order: each unit vector minus its components along the ones before it, renormalised."""
    basis = []
    for vector in vectors:
        residual = vector - sum((vector @ b) * b for b in basis)
        norm = np.linalg.norm(residual)
        if norm < 1e-6:
            raise ALAEError("a direction lies in the span of the ones before it; it cannot be orthogonalised")
        basis.append(residual / norm)
    return basis


def check_tasks(tasks: list[Task]) -> None:
    """Every task has training and held-out images on both of its sides (known from the labels
    alone, so checked before any image is encoded)."""
    if not tasks:
        raise ALAEError("no directions to fit")
    names = [task.name for task in tasks]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise ALAEError(f"direction(s) named twice: {', '.join(map(repr, repeated))}")
    for name in names:
        if unusable_name(name):
            raise ALAEError(f"{name!r} cannot name a direction: it becomes a file name (edit apply's RUN/edits/NAME.png); "
                            "rename that attribute or class without '/', '\\', control characters or a lone '.' / '..', "
                            f"in at most {MAX_NAME_BYTES} bytes")
    for task in tasks:
        for part, side in (("training", task.train_side), ("held-out", task.test_side)):
            counts = {name: int((side == value).sum()) for name, value in ((task.negative, 0), (task.positive, 1))}
            if min(counts.values()) == 0:
                raise ALAEError(f"{task.name}: {', '.join(f'{n} {name!r}' for name, n in counts.items())} among the "
                                f"{part} images; a direction needs both sides (use more images, or leave it out: --only, --pairs)")


def unusable_name(name: str) -> bool:
    """A direction name that would not stay one file name inside RUN/edits/."""
    return (not name.strip() or name in (".", "..") or any(c in "/\\" or ord(c) < 32 for c in name)
            or len(name.encode()) > MAX_NAME_BYTES)


def fit_directions(train_codes, test_codes, tasks: list[Task], method="svm", orthogonalize=False,
                   provenance: dict | None = None) -> DirectionSet:
    """One unit direction per task, fitted on `train_codes` [N, latent] and scored on `test_codes`.

    Each direction's info also gives `class_distance`, the Euclidean distance between the two
    sides' mean training codes, the unit of edit strengths for every direction alike: a strength
    of that size moves w as far as the two means lie apart. Along a "mean" direction that is
    exactly from one mean onto the other; an SVM normal is not parallel to the means' difference,
    so along it the same move goes past the other side's mean (on MNIST 1.8-2.7x the means' gap
    along the normal, an audit measured): strengths compare across directions by distance moved,
    not by how far each crosses its own boundary."""
    check_tasks(tasks)
    for split, codes in (("training", train_codes), ("held-out", test_codes)):
        if broken := int(np.sum(~np.isfinite(codes).all(axis=1))):
            raise ALAEError(f"E gives codes that are not numbers for {broken} of the {len(codes)} {split} images: the "
                            "run's encoder is broken (a run that diverged: see log.csv; a converted checkpoint: "
                            "convert it again from an undamaged file)")
    boundaries = [fit_boundary(train_codes, task.train_side, method) for task in tasks]
    vectors = [normal for normal, _ in boundaries]
    if orthogonalize:
        vectors = orthogonalized(vectors)
    directions = []
    for index, (task, (normal, offset), vector) in enumerate(zip(tasks, boundaries, vectors)):
        side_means = [train_codes[task.train_side == side].mean(axis=0) for side in (0, 1)]
        info = {"method": method, "negative": task.negative, "positive": task.positive,
                "held_out_accuracy": round(held_out_accuracy(normal, offset, test_codes, task.test_side), 6),
                "class_distance": round(float(np.linalg.norm(side_means[1] - side_means[0])), 6),
                "train_images": int((task.train_side >= 0).sum()), "held_out_images": int((task.test_side >= 0).sum())}
        if orthogonalize:
            info["orthogonal_to"] = [earlier.name for earlier in tasks[:index]]
        directions.append(Direction(task.name, vector.astype(np.float32), {**info, **(provenance or {})}))
    return DirectionSet(train_codes.shape[1], tuple(directions))


# --- the run's directions file ------------------------------------------------------------------

def load_directions(path, latent_dim: int) -> DirectionSet:
    """A directions file for a model of latent size `latent_dim`; ALAEError if it cannot be used."""
    try:
        directions = DirectionSet.read(path)
    except DirectionsError as exc:
        raise ALAEError(str(exc)) from None
    if directions.latent_dim != latent_dim:
        raise ALAEError(f"{path}: directions of latent size {directions.latent_dim}; this model's is {latent_dim}")
    return directions


def fitted_elsewhere_note(directions: DirectionSet, path, run, step: int) -> str | None:
    """A note when some of `directions` were fitted on the codes of another run (told by its
    directory's name, as projection files are) or another step than the networks of `run` at `step`."""
    here = Path(run).resolve().name
    fitted = {(Path(d.info.get("run", here)).name, d.info["training_step"]) for d in directions.directions
              if "training_step" in d.info}
    others = sorted(fitted - {(here, step)})
    if not others:
        return None
    described = ", ".join(f"step {s}" if r == here else f"run {r}'s step {s}" for r, s in others)
    if any(r != here for r, _ in others):
        networks, again = f"run {here}'s", "run"
    else:
        networks, again = "those", "checkpoint"
    return (f"note: {path} holds directions fitted on the codes of {described}; the networks used here are "
            f"{networks} of step {step} (fit them again for this {again})")


def read_run_directions(run, latent_dim: int) -> DirectionSet | None:
    """RUN/directions.json, or None when the run has none."""
    path = RunDir(run).directions_file
    return load_directions(path, latent_dim) if path.is_file() else None
