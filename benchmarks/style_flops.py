"""FLOPs per training image of the StyleALAE train step, counted on the XLA HLO graph.

    python benchmarks/style_flops.py [--resolutions 32,64,128,256] [--batch-sizes 2,4,8]
                                     [--xla-python PYTHON_WITH_JAXLIB]

Rows: `mnist_style32` as it is, and the `celeba_hq256` preset (latent 512, channels 64..512,
F with 8 layers) with `image_shape` [R, R, 3] for each R. Each model is set to its top level
and the fade-in `blend` is a graph input, as in training at the top level.

Method. The full train step (`ALAE.train_step`: step I with the R1 double backward, step II,
step III, the EMA and w_avg updates, the Adam updates) is wrapped in
`tf.function(jit_compile=True)` and lowered, for a fixed batch B, with
`experimental_get_compiler_ir(batch)(stage="hlo")`: TF's own tf2xla lowering to an HLO module,
before XLA's optimisation passes (fusion moves work around but does not change the arithmetic).
Nothing runs. TF 2.21 does not expose XLA's `HloCostAnalysis` in Python, so the HLO text is
counted here with its rules: `dot` = 2 x output elements x contracted size; `convolution` =
2 x batch x (input features / groups) x output features x the (output, kernel) position pairs
that fall on the unpadded input (padding-aware, as XLA counts); `reduce` and `reduce-window` =
the reducer's flops per reduced element; other elementwise ops 1 per output element;
transcendentals (exp, log, sqrt, rsqrt, power, ...) counted apart, as XLA does; data movement
(broadcast, reshape, transpose, slice, pad, concatenate, copy, ...) 0. With `--xla-python`
(an interpreter with `jaxlib`, which does expose it: `pip install jax` in a separate venv) the
same HLO modules also go through XLA's own `HloCostAnalysis` and the script reports the
relative difference (at most 0.005% on the five default rows).

Per image = the slope of FLOPs over the batch sizes (least squares); the script checks the
counts are exactly linear in B (largest residual in the JSON, a warning if it is not ~0) and
reports the intercept: the batch-independent work (Adam, EMA).
"Matmul FLOPs" are conv + dot, what a GPU's tensor-core peak applies to; the rest is
elementwise work, memory-bound on a GPU.

Forward only: G (synthesis from per-layer styles, with noise and the blend, as in training;
F not included) and E (image -> w, with the blend), per image, counted the same way.

Cross-check by an independent route: an analytic count of G's forward convolutions and style
dense layers at 32x32 (written from the architecture in `alae_tf/nets/style.py`, not from a
graph), against (a) this HLO counter's conv + dot FLOPs of G's forward (padding-aware, so the
analytic count is also given padding-aware) and (b) TF's own per-op FLOP statistics (the
`RegisterStatistics(op, "flops")` functions that `tf.compat.v1.profiler`'s float_ops sums) of
the Conv2D, DepthwiseConv2dNative and MatMul nodes of G's forward TF graph (these count the
full padded window, like the analytic count without padding; TF registers no statistic for the
transposed convolutions of G's upconvs, so that route covers the rest of G). At 32x32 all agree
exactly.

Prints a markdown table, then JSON on the last line.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
import keras
import numpy as np
import tensorflow as tf

from alae_tf.config import load_preset
from alae_tf import schedule
from alae_tf.batch import GENERATOR
from alae_tf.inference import draw_noise
from alae_tf.levels import level_resolution
from alae_tf.model import build_alae
from alae_tf.nets.style import level_channels
from alae_tf.compute import set_precision
from serving.command_line import CommandParser, python_with

# --- HLO text counter (XLA HloCostAnalysis rules) ---------------------------------------------

_SHAPE = re.compile(r"([a-z]+[0-9]*)\[([0-9,]*)\]")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%(\S+)\s*=\s*(.+?)\s+([a-z][a-z0-9-]*)\((.*)$")
_COMPUTATION = re.compile(r"^(ENTRY\s+)?%(\S+)\s.*\{\s*$")
_NO_FLOPS = {
    "parameter", "constant", "broadcast", "reshape", "transpose", "copy", "slice", "concatenate", "pad",
    "reverse", "bitcast-convert", "get-tuple-element", "tuple", "dynamic-slice", "dynamic-update-slice",
    "iota", "bitcast", "gather", "rng-bit-generator", "after-all",
}
_TRANSCENDENTAL = {
    "exponential", "log", "log-plus-one", "exponential-minus-one", "logistic", "power", "sqrt", "rsqrt",
    "cbrt", "tanh", "sine", "cosine", "tan", "atan2", "erf",
}


def _dims(text):
    return [int(d) for d in text.split(",") if d]


def _elements(dims):
    return int(np.prod(dims, dtype=np.int64)) if dims else 1


def parse_hlo(text):
    """{computation name: [(name, shape, opcode, rest of line)]}, entry computation name."""
    computations, current, entry = {}, None, None
    for line in text.splitlines():
        match = _COMPUTATION.match(line)
        if match and not line.startswith(" "):
            current = match.group(2)
            computations[current] = []
            entry = current if match.group(1) else entry
            continue
        match = _INSTRUCTION.match(line)
        if match and current is not None:
            computations[current].append(match.groups())
    return computations, entry


def _valid_pairs(size_in, size_kernel, size_out, stride, pad_low, lhs_dilation, rhs_dilation):
    """(output, kernel) position pairs along one spatial dim that read a real (unpadded) input."""
    count = 0
    for k in range(size_kernel):
        for o in range(size_out):
            index = o * stride - pad_low + k * rhs_dilation
            if index % lhs_dilation == 0 and 0 <= index // lhs_dilation < size_in:
                count += 1
    return count


def _convolution_flops(shape, rest):
    lhs, rhs = (_dims(s[1]) for s in _SHAPE.findall(rest)[:2])
    out = _dims(_SHAPE.match(shape.strip()).group(2))
    lhs_labels, rhs_labels, out_labels = re.search(r"dim_labels=(\S+?)_(\S+?)->([^,\s]+)", rest).groups()
    window = dict(kv.split("=") for kv in re.search(r"window=\{([^}]*)\}", rest).group(1).split())
    spatial = len(window["size"].split("x"))

    def field(key, default):
        return window.get(key, "x".join([default] * spatial)).split("x")

    strides = [int(s) for s in field("stride", "1")]
    pads = [int(p.split("_")[0]) for p in field("pad", "0_0")]
    lhs_dilations = [int(s) for s in field("lhs_dilate", "1")]
    rhs_dilations = [int(s) for s in field("rhs_dilate", "1")]
    groups = re.search(r"feature_group_count=(\d+)", rest)
    batch_groups = re.search(r"batch_group_count=(\d+)", rest)
    groups = int(groups.group(1)) if groups else 1
    batch_groups = int(batch_groups.group(1)) if batch_groups else 1
    pairs = 1
    for s in range(spatial):
        d = str(s)
        pairs *= _valid_pairs(lhs[lhs_labels.index(d)], rhs[rhs_labels.index(d)], out[out_labels.index(d)],
                              strides[s], pads[s], lhs_dilations[s], rhs_dilations[s])
    fmas = (lhs[lhs_labels.index("f")] // groups) * rhs[rhs_labels.index("o")] * (lhs[lhs_labels.index("b")] // batch_groups) * pairs
    return 2 * fmas


def _instruction_flops(computations, name, shape, opcode, rest):
    """(flops, category) of one HLO instruction; category: conv, dot, elementwise, transcendental, none."""
    if opcode in _NO_FLOPS:
        return 0, "none"
    match = _SHAPE.match(shape.strip())
    outputs = _elements(_dims(match.group(2))) if match else 0
    if opcode == "convolution":
        return _convolution_flops(shape, rest), "conv"
    if opcode == "dot":
        lhs = _dims(_SHAPE.findall(rest)[0][1])
        contracted = _elements([lhs[d] for d in _dims(re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", rest).group(1))])
        return 2 * outputs * contracted, "dot"
    if opcode in ("reduce", "reduce-window"):
        reducer = re.search(r"to_apply=%([^,\s]+)", rest).group(1)
        per_element = sum(_instruction_flops(computations, *i)[0] for i in computations[reducer])
        if opcode == "reduce":
            return (_elements(_dims(_SHAPE.findall(rest)[0][1])) - outputs) * per_element, "elementwise"
        window = _elements([int(s) for s in re.search(r"window=\{size=([0-9x]+)", rest).group(1).split("x")])
        return outputs * (window - 1) * per_element, "elementwise"
    if opcode in _TRANSCENDENTAL:
        return outputs, "transcendental"
    return outputs, "elementwise"


def count_hlo(text):
    """FLOPs of an HLO module's entry computation by category (transcendentals kept apart)."""
    computations, entry = parse_hlo(text)
    totals = defaultdict(int)
    for instruction in computations[entry]:
        flops, category = _instruction_flops(computations, *instruction)
        totals[category] += flops
    return {
        "conv": totals["conv"], "dot": totals["dot"], "elementwise": totals["elementwise"],
        "flops": totals["conv"] + totals["dot"] + totals["elementwise"], "transcendentals": totals["transcendental"],
    }


_XLA_COST_SCRIPT = """
import json, sys
import jax
import jaxlib._hlo as hlo
from jax._src.lib import xla_client
client = jax.devices("cpu")[0].client
out = {}
for path in sys.argv[1:]:
    cost = xla_client._xla.hlo_module_cost_analysis(client, hlo.hlo_module_from_text(open(path).read()))
    out[path] = {"flops": cost.get("flops", 0.0), "transcendentals": cost.get("transcendentals", 0.0)}
print(json.dumps(out))
"""


def xla_cost_analysis(python, texts):
    """XLA's own HloCostAnalysis of HLO texts, run by an interpreter that has jaxlib."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(texts):
            paths.append(os.path.join(tmp, f"module_{i}.hlo"))
            with open(paths[-1], "w") as f:
                f.write(text)
        result = subprocess.run([python, "-c", _XLA_COST_SCRIPT, *paths], capture_output=True, text=True, check=True)
        costs = json.loads(result.stdout.strip().splitlines()[-1])
        return [costs[p] for p in paths]


# --- models and traced functions ---------------------------------------------------------------


def style_config(name, resolution=None):
    config = load_preset(name)
    if resolution is not None:
        config.model.image_shape = [resolution, resolution, 3]
        levels = config.levels
        config.train.level_batch_sizes = config.train.level_batch_sizes[:levels]
        config.train.level_learning_rates = config.train.level_learning_rates[:levels]
        config.validate(f"{name} at {resolution}")
    return config


def example_batch(config, batch):
    """A training batch of the `alae_tf.batch` schema (values do not change the FLOPs)."""
    shape, latent = config.model.image_shape, config.model.latent_dim
    data = {"images": tf.zeros([batch, *shape]), "blend": tf.fill([batch], 0.5),
            "noise_seed": tf.zeros([batch], tf.int64)}
    for key in ("z_d", "z_g", "z_ae", "z_d_mix", "z_g_mix"):
        data[key] = tf.random.normal([batch, latent])
    for key in ("crossover_d", "crossover_g"):
        data[key] = tf.fill([batch], 3)
    return data


def hlo_of(function, *args):
    return tf.function(function, jit_compile=True).experimental_get_compiler_ir(*args)(stage="hlo")


def generator_forward(model):
    def forward(styles, blend):
        noise = draw_noise(model.generator.noise_shapes(model.level), tf.shape(styles)[0], 0, GENERATOR.noise_stream)
        return model.generator(styles, level=model.level, blend=blend[0], noise=noise, training=True)
    return forward


def encoder_forward(model):
    def forward(images, blend):
        return model.encoder(images, level=model.level, blend=blend[0], training=True)
    return forward


def fit_per_image(batches, flops):
    """Least-squares slope and intercept of flops over batch sizes, and the largest residual."""
    slope, intercept = np.polyfit(np.array(batches, float), np.array(flops, float), 1)
    residual = max(abs(f - (intercept + slope * b)) for b, f in zip(batches, flops))
    return slope, intercept, residual


def analytic_generator_flops(config, level):
    """G's forward convolutions (incl. blur) and style dense layers per image at `level`, with the
    fade-in's coarse toRGB, from the architecture: (full window, padding-aware), and the full-window
    share of the upconvs (upsample + 3x3 conv as one transposed conv: 2x2 input taps per output)."""
    channels = config.model.image_shape[-1]
    latent = config.model.latent_dim
    m, levels = config.model, config.levels
    full = padded = upconv = 0

    def channels_at(level):
        return level_channels(m.start_channels, m.max_channels, levels, level)

    def level_side(level):
        return level_resolution(level, m.image_shape[0], levels)

    def conv(resolution, kernel, c_in, c_out):
        nonlocal full, padded
        macs = resolution**2 * c_out * c_in
        full += 2 * macs * kernel**2
        taps = kernel * resolution - 2 * (kernel // 2)  # valid (output, tap) pairs per spatial dim
        padded += 2 * macs * taps**2 // resolution**2

    def transposed_upconv(resolution, c_in, c_out):
        nonlocal full, padded, upconv
        flops = 2 * resolution**2 * c_out * c_in * 4
        upconv += flops
        full += flops
        padded += 2 * c_out * c_in * (2 * resolution - 2) ** 2  # per dim, the first and last output lose a tap

    previous = None
    for i in range(level + 1):
        c, r = channels_at(i), level_side(i)
        if i > 0:
            transposed_upconv(r, previous, c)
            conv(r, 3, 1, c)  # blur: depthwise, one input feature per group
        conv(r, 3, c, c)
        previous = c
    conv(level_side(level), 1, channels_at(level), channels)  # toRGB
    if level > 0:
        conv(level_side(level - 1), 1, channels_at(level - 1), channels)  # coarse toRGB
    style = sum(2 * 2 * latent * 2 * channels_at(i) for i in range(level + 1))  # 2 AdaIN per level
    return {"conv_full": full, "conv_padding_aware": padded, "upconv_full": upconv, "dot": style}


def registry_matmul_flops(concrete_function):
    """TF's per-op FLOP statistics (`RegisterStatistics(op, "flops")`, what tf.compat.v1.profiler's
    float_ops sums) of the Conv2D, DepthwiseConv2dNative and MatMul nodes of a TF graph, and how many
    Conv2DBackpropInput nodes (G's upconvs) it holds: TF registers no statistic for those."""
    from tensorflow.python.framework import ops as tf_ops

    totals = defaultdict(int)
    graph = concrete_function.graph
    for op in graph.get_operations():
        if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul"):
            totals["dot" if op.type == "MatMul" else "conv"] += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
        totals["transposed_convs"] += op.type == "Conv2DBackpropInput"
    return totals


# --- main ---------------------------------------------------------------------------------------


def measure(label, config, batches, xla_python):
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    model = build_alae(config)
    level = model.generator.levels - 1
    model.enter_phase(schedule.phases(config)[level])
    latent, styles = config.model.latent_dim, model.generator.num_styles
    texts = {"step": [], "g": [], "e": []}
    for batch in batches:
        data = example_batch(config, batch)
        blend = tf.fill([batch], 0.5)
        texts["step"].append(hlo_of(model.train_step, data))
        texts["g"].append(hlo_of(generator_forward(model), tf.zeros([batch, styles, latent]), blend))
        texts["e"].append(hlo_of(encoder_forward(model), data["images"], blend))
    counts = {key: [count_hlo(t) for t in value] for key, value in texts.items()}
    row = {"model": label, "image_shape": list(config.model.image_shape), "level": level,
           "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)), "batch_sizes": list(batches)}
    for key, values in counts.items():
        for part in ("flops", "conv", "dot", "transcendentals"):
            slope, intercept, residual = fit_per_image(batches, [v[part] for v in values])
            row[f"{key}_{part}_per_image"] = slope
            if part == "flops":
                row[f"{key}_flops_intercept"] = intercept
                row[f"{key}_flops_max_residual"] = residual
                if residual > 1e-9 * max(v["flops"] for v in values):
                    print(f"warning: {label} {key}: FLOPs not linear in the batch (residual {residual:.3g})", file=sys.stderr)
        row[f"{key}_matmul_per_image"] = row[f"{key}_conv_per_image"] + row[f"{key}_dot_per_image"]
    if xla_python:
        xla = xla_cost_analysis(xla_python, texts["step"])
        ours = [c["flops"] for c in counts["step"]]
        row["step_xla_cost_analysis_flops"] = [x["flops"] for x in xla]
        row["step_counter_vs_xla_rel_diff"] = max(abs(o - x["flops"]) / x["flops"] for o, x in zip(ours, xla))
        slope, _, _ = fit_per_image(batches, [x["flops"] for x in xla])
        row["step_xla_flops_per_image"] = slope
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row, model


def cross_check(config, model, batch):
    """Analytic G forward vs this counter (HLO) vs TF's per-op FLOP statistics, per image."""
    level = model.level
    analytic = analytic_generator_flops(config, level)
    styles = tf.zeros([batch, model.generator.num_styles, config.model.latent_dim])
    blend = tf.fill([batch], 0.5)
    hlo = count_hlo(hlo_of(generator_forward(model), styles, blend))
    concrete = tf.function(generator_forward(model)).get_concrete_function(styles, blend)
    registry = registry_matmul_flops(concrete)
    return {
        "model": f"{config.preset} {config.model.image_shape}", "batch": batch,
        "analytic_conv_full_per_image": analytic["conv_full"], "analytic_conv_padding_aware_per_image": analytic["conv_padding_aware"],
        "analytic_upconv_full_per_image": analytic["upconv_full"], "analytic_dot_per_image": analytic["dot"],
        "hlo_conv_per_image": hlo["conv"] / batch, "hlo_dot_per_image": hlo["dot"] / batch,
        "tf_registry_conv_per_image": registry["conv"] / batch, "tf_registry_dot_per_image": registry["dot"] / batch,
        "tf_registry_unregistered_transposed_convs": registry["transposed_convs"],
    }


def giga(x):
    return f"{x / 1e9:.2f}"


def main():
    parser = CommandParser(prog="python benchmarks/style_flops.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", default="32,64,128,256", help="celeba_hq256-derived rows (default: 32,64,128,256)")
    parser.add_argument("--batch-sizes", default="2,4,8", help="traced batch sizes (per image = the slope; default: 2,4,8)")
    parser.add_argument("--no-mnist", action="store_true", help="skip the mnist_style32 row")
    parser.add_argument("--xla-python", type=python_with("jaxlib"), help="a Python interpreter with jaxlib: also run XLA's own HloCostAnalysis")
    args = parser.parse_args()
    try:
        batches = sorted({int(b) for b in args.batch_sizes.split(",")})
        resolutions = [int(r) for r in args.resolutions.split(",")]
    except ValueError:
        parser.error("--batch-sizes and --resolutions take comma-separated whole numbers")
    if len(batches) < 2 or batches[0] < 1:
        parser.error(f"--batch-sizes needs two or more distinct sizes of at least 1 (the per-image figure is the "
                     f"slope across them), got {args.batch_sizes}")
    if odd := [r for r in resolutions if r < 4 or r & (r - 1)]:
        parser.error(f"--resolutions must be powers of two from 4, got {odd}")
    set_precision("none")

    configs = [] if args.no_mnist else [("mnist_style32", style_config("mnist_style32"))]
    configs += [(f"celeba_hq256 @ {r}", style_config("celeba_hq256", int(r))) for r in args.resolutions.split(",")]
    rows, check = [], None
    for label, config in configs:
        row, model = measure(label, config, batches, args.xla_python)
        print(f"# {label}: {giga(row['step_flops_per_image'])} GFLOP/image ({row['seconds']} s)", file=sys.stderr)
        rows.append(row)
        if check is None and config.preset == "celeba_hq256" and config.model.image_shape[0] == 32:
            check = cross_check(config, model, batches[-1])
        keras.backend.clear_session()

    print("| model | image | params (M) | train step GFLOP/image | of which conv+dot | fwd G | fwd E | "
          "step / (fwd G + fwd E) | XLA cost analysis |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        xla = (f"{giga(r['step_xla_flops_per_image'])} ({100 * r['step_counter_vs_xla_rel_diff']:.3f}%)"
               if "step_xla_flops_per_image" in r else "-")
        ratio = r["step_flops_per_image"] / (r["g_flops_per_image"] + r["e_flops_per_image"])
        print(f"| {r['model']} | {'x'.join(map(str, r['image_shape']))} | {r['parameters'] / 1e6:.1f} | "
              f"{giga(r['step_flops_per_image'])} | {giga(r['step_matmul_per_image'])} | {giga(r['g_flops_per_image'])} | "
              f"{giga(r['e_flops_per_image'])} | {ratio:.1f} | {xla} |")
    if check:
        print(f"\ncross-check, G forward at 32x32 (celeba_hq256 channels), GFLOP/image: analytic conv "
              f"{giga(check['analytic_conv_full_per_image'])} full window / {giga(check['analytic_conv_padding_aware_per_image'])} "
              f"padding-aware (of which upconvs {giga(check['analytic_upconv_full_per_image'])} full window), dense "
              f"{check['analytic_dot_per_image'] / 1e9:.4f}; HLO counter conv {giga(check['hlo_conv_per_image'])}, "
              f"dot {check['hlo_dot_per_image'] / 1e9:.4f}; TF op registry (tf.compat.v1.profiler's float_ops) "
              f"conv {giga(check['tf_registry_conv_per_image'])} without the "
              f"{check['tf_registry_unregistered_transposed_convs']} upconvs (no statistic registered), "
              f"MatMul {check['tf_registry_dot_per_image'] / 1e9:.4f}")
    print(json.dumps({"benchmark": "style_flops", "rows": rows, "cross_check": check, "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
