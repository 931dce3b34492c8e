"""How TensorFlow computes on this machine: the Keras mixed-precision policy, the training graphs'
Grappler options, and the CPU flags that say whether bf16 runs natively here."""

import contextlib
from pathlib import Path

import keras
import tensorflow as tf


def set_precision(mixed_precision: str) -> None:
    policies = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
    keras.mixed_precision.set_global_policy(policies.get(mixed_precision, "float32"))


@contextlib.contextmanager
def process_settings_restored():
    """The Keras dtype policy and Grappler's options as they were before the block, whatever it set:
    a training command called from Python (a notebook) leaves the interpreter's later work as it
    found it. (Grappler takes only on or off: an option the block set is put back on, its default.)"""
    policy = keras.mixed_precision.global_policy()
    options = tf.config.optimizer.get_experimental_options()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        set_now = tf.config.optimizer.get_experimental_options()
        tf.config.optimizer.set_experimental_options({**{key: True for key in set_now if key not in options}, **options})


def set_training_graph_options() -> None:
    """Training graphs run without Grappler's remapper. With oneDNN's kernels on (alae_tf turns
    them on) it fails on StyleALAE's train step from 8x8 up, printing `E ... remapper failed` at
    every level: it fuses E's stride-2 convolution with its bias add, then that with the leaky ReLU,
    whose gradient still reads the bias add's output. Its fusions were worth nothing to the train
    step where measured (README, "Grappler's remapper is off for training"); inference graphs (evaluate, export, serving) keep it."""
    tf.config.optimizer.set_experimental_options({"remapping": False})


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")):
    """The CPU's feature flags from /proc/cpuinfo, or None where there is no such file."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    return next((set(line.partition(":")[2].split()) for line in text.splitlines() if line.startswith("flags")), None)


def precision_cpu_warning(mixed_precision: str, flags, has_gpu: bool):
    """A warning line when the mixed precision is slower than float32 on this machine: fp16 on any
    CPU (an audit, 2-core Zen 4 shared, MNIST MLP: 4.8 steps/s against 6.6 in float32 and 11.6 in
    bf16), bf16 on a CPU with no bf16 instructions, where it is emulated (2-core AVX2 EPYC, side by
    side with float32: 0.9x for the MNIST MLP step, 0.09x for StyleALAE's convolutions); None
    otherwise (bf16 when the flags are unknown)."""
    if has_gpu or mixed_precision == "none":
        return None
    if mixed_precision == "fp16":
        return ("warning: fp16 (--mixed-precision fp16, or train.mixed_precision in the run's config) on a CPU: "
                "float16 is for GPUs, and runs slower than float32 here; use --mixed-precision bf16 on a CPU with "
                "avx512_bf16 or amx_bf16, else none")
    if flags is None or flags & set(BF16_CPU_FLAGS):
        return None
    return ("warning: bf16 (--mixed-precision bf16, or train.mixed_precision in the run's config) on a CPU "
            "without bf16 instructions (no avx512_bf16 or amx_bf16 in /proc/cpuinfo): TensorFlow emulates it, "
            "slower than float32 (StyleALAE ~10x slower); use --mixed-precision none here")
