"""The training schedule: which level, batch size, learning rate and fade-in a global step has.

One schedule for every backbone. A model with L levels (`model.levels`; 1 for the MLP) trains
in L phases: level l lasts `images_per_level` images, i.e. ceil(images_per_level / batch_l)
steps, and the last level runs to the end of training (a one-level model is one open-ended
phase). During the first half of every level after the first, the new level fades in with
the reference's cosine ramp (`fade_in`). Everything is a function of the step, so a run
resumed mid-level or mid-fade continues the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keras import ops

from alae_tf.levels import level_resolution


@dataclass(frozen=True)
class Phase:
    level: int
    resolution: int  # side of the images trained at this level
    first_step: int
    end_step: int | None  # None: the last level, open-ended
    batch_size: int
    learning_rate: float
    first_image: int  # training images drawn before this phase
    fade_images: int  # images over which the level fades in (0 for level 0)

    @property
    def faded_in_step(self) -> int:
        """The first step at which the level is fully faded in (blend 1)."""
        return self.first_step + math.ceil(self.fade_images / self.batch_size)

    def images_before(self, step: int) -> int:
        """Training images drawn before global step `step` (a step inside this phase)."""
        return self.first_image + (step - self.first_step) * self.batch_size


def phases(config) -> list[Phase]:
    """The phases of a resolved `alae_tf.config.Config`, one per level."""
    t, levels, resolution = config.train, config.model.levels, config.model.image_shape[0]
    result, step, images = [], 0, 0
    for level in range(levels):
        last = level == levels - 1
        batch = t.level_batch_size(level)
        steps = None if last else math.ceil(t.images_per_level / batch)
        fade = 0 if level == 0 else t.images_per_level // 2
        result.append(Phase(level, level_resolution(level, resolution, levels), step, None if last else step + steps,
                            batch, t.level_learning_rate(level), images, fade))
        if not last:
            step, images = step + steps, images + steps * batch
    return result


def phase_at(schedule: list[Phase], step: int) -> Phase:
    for phase in schedule:
        if phase.end_step is None or step < phase.end_step:
            return phase
    raise AssertionError("the last phase is open-ended")


def fading_blend(phase: Phase, step: int) -> float | None:
    """`blend_at(phase, step)` as a number while the phase's level fades in; None at other steps
    (the level is in; level 0 has no fade-in)."""
    return float(blend_at(phase, step)) if phase.first_step <= step < phase.faded_in_step else None


def fade_in(t):
    """The reference's cosine ramp sin(t * pi - pi / 2) / 2 + 1 / 2 for t in [0, 1] (a float or a tensor)."""
    return ops.sin(t * math.pi - math.pi / 2) / 2 + 0.5


def blend_at(phase: Phase, step):
    """Fade-in weight of the phase's top level at `step` (a Python int or a tensor): 1 = fully faded in.

    Returns a float32 scalar tensor; the data pipeline puts it in every batch."""
    if phase.fade_images == 0:
        return ops.convert_to_tensor(1.0)
    t = ops.minimum(1.0, ops.cast(step - phase.first_step, "float32") * (phase.batch_size / phase.fade_images))
    return fade_in(t)


def total_steps(config, num_train_images: int) -> int:
    """`train.steps`, or the step at which `train.epochs` passes over the data have been drawn."""
    if config.train.steps is not None:
        return config.train.steps
    return max(1, step_at_image(phases(config), config.train.epochs * num_train_images))


def step_at_image(schedule: list[Phase], images: int) -> int:
    """The first step by which `images` training images have been drawn."""
    for phase in schedule[:-1]:
        if images <= phase.images_before(phase.end_step):
            return phase.first_step + math.ceil((images - phase.first_image) / phase.batch_size)
    last = schedule[-1]
    return last.first_step + math.ceil((images - last.first_image) / last.batch_size)


def short_schedule_note(config, num_train_images: int) -> str | None:
    """A warning when `train.epochs` ends before the top level starts: `images_per_level` counts
    images, so a preset's schedule, sized for its dataset, never grows on a smaller one."""
    schedule, t = phases(config), config.train
    if t.steps is not None or len(schedule) == 1:
        return None
    top, total = schedule[-1], total_steps(config, num_train_images)
    if total > top.first_step:
        return None
    reached = phase_at(schedule, total - 1)
    side = top.resolution
    return (f"warning: train.epochs {t.epochs} over {num_train_images} training images ends at step {total}, at level "
            f"{reached.level} ({reached.resolution}x{reached.resolution}): the top level ({side}x{side}) would start "
            f"after {top.first_image:,} images (train.images_per_level {t.images_per_level}, sized for the preset's "
            f"dataset). For this data set e.g. train.images_per_level: {t.epochs * num_train_images // len(schedule)} "
            "(an equal share of the epochs per level) in a --config file, or raise --epochs")


def segments(schedule: list[Phase], start: int, total: int):
    """(phase, first step, end step) for each level met while training steps [start, total)."""
    result = []
    for phase in schedule:
        end = total if phase.end_step is None else min(phase.end_step, total)
        begin = max(start, phase.first_step)
        if begin < end:
            result.append((phase, begin, end))
    return result


def describe_segment(phase: Phase, begin: int, end: int) -> str:
    """The line training prints as it starts steps [begin, end) of `phase`. A resume past the
    fade-in says it is done (without "(done)" it read as if the fade-in were to come)."""
    fade = ""
    if phase.fade_images:
        fade = f", fade-in over {phase.fade_images} images{' (done)' if begin >= phase.faded_in_step else ''}"
    return (f"level {phase.level} ({phase.resolution}x{phase.resolution}): steps {begin} -> {end}, "
            f"batch {phase.batch_size}, lr {phase.learning_rate}{fade}")


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches per pass over the data: the length of one Keras epoch (progress bars, logs)."""
    return max(1, num_images // batch_size)
