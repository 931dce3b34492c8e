"""Progressive growing: which level, batch size, learning rate and fade-in a global step has.

Level L (resolution 4 * 2^L) lasts `images_per_level` images, i.e. ceil(images_per_level /
batch_L) steps; the last level runs to the end of training. During the first half of every
level after the first, the new level fades in with the reference's cosine ramp
blend = sin(t * pi - pi / 2) / 2 + 1 / 2, t = images into the level / (images_per_level / 2).
Everything is a function of the step, so a run resumed mid-level or mid-fade continues the
same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def num_levels(resolution: int) -> int:
    """Levels of a progressive model growing from 4x4 to `resolution` (a power of two)."""
    return int(math.log2(resolution)) - 1


def level_resolution(level: int) -> int:
    return 4 * 2**level


@dataclass(frozen=True)
class Phase:
    level: int
    first_step: int
    end_step: int | None  # None: the last level, open-ended
    batch_size: int
    learning_rate: float
    first_image: int  # training images drawn before this phase
    fade_images: int  # images over which the level fades in (0 for level 0)

    @property
    def resolution(self) -> int:
        return level_resolution(self.level)

    def images_before(self, step: int) -> int:
        """Training images drawn before global step `step` (a step inside this phase)."""
        return self.first_image + (step - self.first_step) * self.batch_size


def phases(train_config, num_levels: int) -> list[Phase]:
    t = train_config
    result, step, images = [], 0, 0
    for level in range(num_levels):
        last = level == num_levels - 1
        steps = None if last else math.ceil(t.images_per_level / t.level_batch_sizes[level])
        fade = 0 if level == 0 else t.images_per_level // 2
        result.append(Phase(level, step, None if last else step + steps, t.level_batch_sizes[level],
                            t.level_learning_rates[level], images, fade))
        if not last:
            step, images = step + steps, images + steps * t.level_batch_sizes[level]
    return result


def phase_at(schedule: list[Phase], step: int) -> Phase:
    for phase in schedule:
        if phase.end_step is None or step < phase.end_step:
            return phase
    raise AssertionError("the last phase is open-ended")


def blend_at(phase: Phase, step: int) -> float:
    """Fade-in weight of the phase's top level at `step` (1 = fully faded in)."""
    if phase.fade_images == 0:
        return 1.0
    t = min(1.0, (step - phase.first_step) * phase.batch_size / phase.fade_images)
    return math.sin(t * math.pi - math.pi / 2) / 2 + 0.5


def total_steps(config, num_train_images: int) -> int:
    """`train.steps`, or the step at which `train.epochs` passes over the data have been drawn."""
    if config.train.steps is not None:
        return config.train.steps
    schedule = phases(config.train, config.num_levels)
    target, last = config.train.epochs * num_train_images, schedule[-1]
    for phase in schedule[:-1]:
        if target <= phase.images_before(phase.end_step):
            return phase.first_step + math.ceil((target - phase.first_image) / phase.batch_size)
    return last.first_step + max(1, math.ceil((target - last.first_image) / last.batch_size))


def segments(schedule: list[Phase], start: int, total: int):
    """(phase, first step, end step) for each level met while training steps [start, total)."""
    result = []
    for phase in schedule:
        end = total if phase.end_step is None else min(phase.end_step, total)
        begin = max(start, phase.first_step)
        if begin < end:
            result.append((phase, begin, end))
    return result
