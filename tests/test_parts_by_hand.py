"""Values computed by hand (numpy loops, closed forms), each against a mutation the suite let through.

Every test here was written for a one-line mutation of the code that the rest of the suite did not
notice (a mutation-testing audit): the optimizer's formula, the equalized learning-rate scales,
the schedule's step arithmetic, the batch pixels, image loading, the grids' bookkeeping and the
REST protocol's answers. Small inputs, no training: the file runs in seconds.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from alae_tf import schedule
from alae_tf.adam import FusedAdam
from alae_tf.config import load_preset
from alae_tf.data.batches import faded_in, randomly_flipped, style_mixing_draws, to_model_range, to_uint8
from alae_tf.data.files import load_square
from alae_tf.grids import ImageNoise, interpolation_grid, mixing_grid_of_styles
from alae_tf.inference import Sampler
from alae_tf.layers import DownscaleConv2D, EqualizedConv2D, EqualizedDense, PixelNorm, UpscaleConv2D, use_scales
from serving import contract, rest


# --- FusedAdam ----------------------------------------------------------------------------------


def test_fused_adam_follows_adams_formula_by_hand():
    """Keras's Adam written out in float64: m and v from beta_1 and beta_2, the bias correction of
    step t = 1, 2, ..., epsilon added to sqrt(v) (large here, so it weighs), a learning rate changed
    between steps (as enter_phase does) and an entry whose gradient is always 0, which must stay put
    (epsilon 0 would make it 0/0 = NaN; the model comparison in test_adam.py never meets one)."""
    b1, b2, eps = 0.9, 0.99, 0.1
    rates = [0.05, 0.05, 0.02, 0.02, 0.01, 0.01]
    grads = np.random.default_rng(0).normal(size=(len(rates), 4))
    grads[:, 3] = 0.0
    start = np.array([0.5, -1.0, 2.0, 0.25])
    variable = tf.Variable(start.astype(np.float32))
    optimizer = FusedAdam(learning_rate=rates[0], beta_1=b1, beta_2=b2, epsilon=eps)
    optimizer.build([variable])
    x, m, v = start.copy(), np.zeros(4), np.zeros(4)
    for t, (rate, g) in enumerate(zip(rates, grads), start=1):
        optimizer.learning_rate = rate
        optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - rate * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    assert int(optimizer.iterations.numpy()) == len(rates)
    # float32 state and arithmetic over 6 steps: a few ulps of values of order 1.
    np.testing.assert_allclose(variable.numpy(), x, rtol=1e-5, atol=1e-6)
    assert variable.numpy()[3] == np.float32(0.25)
    [slot_m] = [s for s in optimizer.variables if "momentum" in s.name]
    [slot_v] = [s for s in optimizer.variables if "velocity" in s.name]
    np.testing.assert_allclose(slot_m.numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(slot_v.numpy(), v, rtol=1e-5, atol=1e-7)


# --- equalized learning rate ----------------------------------------------------------------------


def conv_same_by_hand(x, kernel):
    """NHWC x HWIO 'same' cross-correlation (odd square kernel), a loop over output pixels."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    out = np.zeros((*x.shape[:3], kernel.shape[3]))
    for y in range(x.shape[1]):
        for z in range(x.shape[2]):
            out[:, y, z] = np.einsum("nhwi,hwio->no", padded[:, y : y + k, z : z + k], kernel)
    return out


def test_equalized_dense_uses_its_weights_times_lr_mul_gain_over_sqrt_fan_in_and_bias_times_lr_mul():
    """y = x W (lr_mul gain / sqrt(fan_in)) + b lr_mul: the scale the official weights are converted
    by and the one Adam's step is multiplied by. Guards the kernel's and the bias's lr_mul."""
    layer = EqualizedDense(5, gain=1.5, lr_mul=0.1)
    x = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    layer(x)
    kernel = np.random.default_rng(2).normal(size=(8, 5)) * 10
    bias = np.random.default_rng(3).normal(size=5) * 10
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    expected = x @ kernel * (0.1 * 1.5 / math.sqrt(8)) + bias * 0.1
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_equalized_dense_stores_weights_of_std_1_over_lr_mul():
    """Weights start as N(0, 1/lr_mul) stored, N(0, gain^2 / fan_in) as used: a layer at lr_mul 0.01
    (F, D) otherwise starts with weights 100 times too small, which no converted-checkpoint test sees."""
    layer = EqualizedDense(256, gain=math.sqrt(2.0), lr_mul=0.01)
    layer.build((None, 256))
    stored = layer.kernel.numpy()
    # 65536 unseeded normal draws: the sample std's relative sd is 0.28%, so 2% is 7 sds.
    assert np.std(stored) == pytest.approx(100.0, rel=0.02)
    assert np.std(stored * layer.runtime_scale) == pytest.approx(math.sqrt(2.0) / 16, rel=0.02)


def test_equalized_convolutions_by_hand():
    """EqualizedConv2D = 'same' convolution times gain / sqrt(in * k^2); UpscaleConv2D the same
    convolution of the nearest 2x upsample (its kernel mirrored into a transposed convolution);
    DownscaleConv2D the 2x2 mean of it. Guards the fan-in of every scale, the mirror and the 1/4."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3, 5))
    scale = 1.3 / math.sqrt(3 * 9)
    conv = EqualizedConv2D(5, kernel_size=3, gain=1.3)
    up, down = UpscaleConv2D(5, gain=1.3), DownscaleConv2D(5, gain=1.3)
    for layer in (conv, up, down):
        layer(x)
        layer.kernel.assign(kernel)
    same = conv_same_by_hand(x, kernel) * scale
    np.testing.assert_allclose(conv(x).numpy(), same, rtol=1e-4, atol=1e-5)
    upsampled = x.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_allclose(up(x).numpy(), conv_same_by_hand(upsampled, kernel) * scale, rtol=1e-4, atol=1e-5)
    means = same.reshape(2, 2, 2, 2, 2, 5).mean(axis=(2, 4))
    np.testing.assert_allclose(down(x).numpy(), means, rtol=1e-4, atol=1e-5)



def test_use_scales_gives_the_factor_each_weight_is_used_times():
    """The weight clip acts on stored weight x use_scales' factor: a kernel's lr_mul gain / sqrt(fan_in),
    an EqualizedDense bias's lr_mul (read off the layer's output at x = 0), nothing for other weights.
    The clipping test takes use_scales as its own oracle, so a wrong factor passed it."""
    model = keras.Sequential([keras.Input((4,)), EqualizedDense(3, gain=2.0, lr_mul=0.1),
                              EqualizedDense(2, lr_mul=1.0, use_bias=False)])
    first, second = model.layers
    first.bias.assign([1.0, -2.0, 3.0])
    scales = use_scales(model)
    assert scales == pytest.approx({first.kernel.path: 0.1 * 2.0 / 2.0, first.bias.path: 0.1,
                                    second.kernel.path: math.sqrt(2.0) / math.sqrt(3.0)})
    at_zero = first(np.zeros((1, 4), np.float32)).numpy()[0]
    np.testing.assert_allclose(at_zero, first.bias.numpy() * scales[first.bias.path], rtol=1e-6)

def test_pixel_norm_divides_by_the_root_mean_square_over_features():
    """x / sqrt(mean(x^2) + 1e-8) per row: a mean, not a sum, over the features."""
    x = np.array([[3.0, 4.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    rms = np.sqrt([25 / 4, 1.0])
    np.testing.assert_allclose(PixelNorm()(x).numpy(), x / rms[:, None], rtol=1e-6)


# --- schedule -------------------------------------------------------------------------------------


def simulated_schedule(config, steps):
    """Per step, drawn one at a time: (level, images drawn before it, blend, fading?) — a level ends
    once it has drawn images_per_level images; a level after the first fades in over the first
    images_per_level // 2 of them with blend (1 - cos(pi t)) / 2."""
    t, levels = config.train, config.model.levels
    fade = t.images_per_level // 2
    level, in_level, drawn, rows = 0, 0, 0, []
    for _ in range(steps):
        if level < levels - 1 and in_level >= t.images_per_level:
            level, in_level = level + 1, 0
        fading = level > 0 and in_level < fade
        progress = min(1.0, in_level / fade) if level > 0 else 1.0
        rows.append((level, drawn, (1 - math.cos(math.pi * progress)) / 2, fading))
        batch = t.level_batch_size(level)
        in_level, drawn = in_level + batch, drawn + batch
    return rows


@pytest.fixture
def uneven_schedule():
    """Four levels whose batch sizes divide neither images_per_level nor its half."""
    config = load_preset("mnist_style32")
    config.train.images_per_level = 1000
    config.train.level_batch_sizes = [32, 24, 16, 12]
    config.train.level_learning_rates = [0.004, 0.003, 0.002, 0.001]
    return config


def test_the_schedule_step_by_step_against_a_simulation(uneven_schedule):
    """Each step's level, images before it, blend and whether it is fading, and each phase's
    batch size and learning rate, against drawing the batches one by one. Guards faded_in_step's
    ceil (the blend reaches 1 only at the step after the last fading one) and fading_blend at a
    level's first step (blend 0, not 'faded in')."""
    config = uneven_schedule
    phases = schedule.phases(config)
    rows = simulated_schedule(config, 400)
    assert rows[-1][0] == 3  # the simulation reaches the top level
    for step, (level, drawn, blend, fading) in enumerate(rows):
        phase = schedule.phase_at(phases, step)
        assert (phase.level, phase.images_before(step)) == (level, drawn), step
        assert (phase.batch_size, phase.learning_rate) == (config.train.level_batch_sizes[level],
                                                          config.train.level_learning_rates[level])
        assert float(schedule.blend_at(phase, step)) == pytest.approx(blend, abs=1e-6), step  # float32 sin
        assert (schedule.fading_blend(phase, step) is not None) == fading, step
        if fading:
            assert schedule.fading_blend(phase, step) == pytest.approx(blend, abs=1e-6)
        else:
            assert float(schedule.blend_at(phase, step)) == 1.0, step
    for phase in phases[1:]:
        assert schedule.fading_blend(phase, phase.first_step) == 0.0


def test_total_steps_and_segments_against_the_simulation(uneven_schedule):
    """total_steps is the first step count whose drawn images reach epochs x data (ceil, not floor,
    inside any phase); segments split [start, total) by level, starting at `start`, not at the
    phase's first step, for a run resumed mid-level."""
    config = uneven_schedule
    rows = simulated_schedule(config, 400)
    drawn_after = [drawn + config.train.level_batch_size(level) for level, drawn, _, _ in rows]
    config.train.steps = None
    for images, epochs in ((100, 1), (330, 3), (1000, 2), (2500, 1), (3001, 1), (1234, 4)):
        config.train.epochs = epochs
        expected = next(k + 1 for k, after in enumerate(drawn_after) if after >= images * epochs)
        assert schedule.total_steps(config, images) == expected, (images, epochs)
    phases = schedule.phases(config)
    for start, total in ((0, 400), (40, 120), (37, 38), (100, 101), (150, 400)):
        by_level = {}
        for step in range(start, total):
            first, _ = by_level.get(rows[step][0], (step, step))
            by_level[rows[step][0]] = (first, step + 1)
        got = [(phase.level, begin, end) for phase, begin, end in schedule.segments(phases, start, total)]
        assert got == [(level, first, end) for level, (first, end) in sorted(by_level.items())], (start, total)


def test_the_line_printed_as_a_level_starts_says_whether_its_fade_in_is_to_come_or_done():
    """tiny_style: level 0 (4x4) for steps 0-23, level 1 (8x8) from step 24, fading in over 96
    images = 12 steps of 8; a resume at step 36 or later is past the fade-in."""
    first, second = schedule.phases(load_preset("tiny_style"))
    assert schedule.describe_segment(first, 0, 24) == "level 0 (4x4): steps 0 -> 24, batch 8, lr 0.002"
    lines = {begin: schedule.describe_segment(second, begin, 38) for begin in (24, 30, 35, 36, 37)}
    for begin in (24, 30, 35):
        assert lines[begin] == f"level 1 (8x8): steps {begin} -> 38, batch 8, lr 0.002, fade-in over 96 images"
    for begin in (36, 37):
        assert lines[begin] == f"level 1 (8x8): steps {begin} -> 38, batch 8, lr 0.002, fade-in over 96 images (done)"


def test_an_epoch_is_the_number_of_full_batches():
    """steps_per_epoch floors (a partial batch is never drawn as a step) and is at least 1."""
    assert [schedule.steps_per_epoch(n, 4) for n in (3, 4, 7, 8, 9)] == [1, 1, 1, 2, 2]


# --- batches --------------------------------------------------------------------------------------


def test_pixel_conversions_by_hand():
    """uint8 k -> k / 127.5 - 1 exactly at the ends; [-1, 1] -> round-half-even((x + 1) 127.5),
    clipped to [0, 255] (values past the range saturate, never wrap)."""
    k = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(to_model_range(k.reshape(1, 16, 16)).numpy().ravel(), k / 127.5 - 1.0, atol=1e-7)
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.004, 2.5], np.float32)
    # (x + 1) * 127.5, exact in float32: -255, 0, 63.75, 127.5 (-> 128, the even one), 191.25, 255, 255.51, 446.25
    assert to_uint8(x).numpy().tolist() == [0, 0, 64, 128, 191, 255, 255, 255]


def test_random_flips_are_left_right_mirrors_of_about_half_the_images():
    """Each image is itself or its left-right mirror (width axis, not height), about half flipped."""
    images = np.random.default_rng(5).normal(size=(64, 4, 4, 2)).astype(np.float32)
    flipped = randomly_flipped(tf.constant(images), step=3, seed=7).numpy()
    mirrored = [np.array_equal(f, x[:, ::-1]) for f, x in zip(flipped, images)]
    same = [np.array_equal(f, x) for f, x in zip(flipped, images)]
    assert all(a or b for a, b in zip(mirrored, same))
    assert 16 <= sum(mirrored) <= 48  # Binomial(64, 1/2): outside this with probability < 1e-4


def test_fading_in_blends_with_the_2x2_block_means_by_hand():
    """blend x + (1 - blend) (mean of the pixel's 2x2 block), pixel by pixel."""
    images = np.random.default_rng(6).uniform(-1, 1, size=(2, 4, 4, 3)).astype(np.float32)
    blend = 0.3
    expected = np.zeros_like(images)
    for y in range(4):
        for x in range(4):
            block = images[:, y // 2 * 2 : y // 2 * 2 + 2, x // 2 * 2 : x // 2 * 2 + 2].mean(axis=(1, 2))
            expected[:, y, x] = blend * images[:, y, x] + (1 - blend) * block
    np.testing.assert_allclose(faded_in(tf.constant(images), blend).numpy(), expected, atol=1e-6)


def test_style_mixing_crossover_points_cover_one_to_the_last_style_in_use():
    """With probability 1 every row mixes at a point uniform over 1 .. styles_in_use - 1 (each one
    drawn), with probability 0 no row mixes (point = num_styles)."""
    draws = style_mixing_draws(2, 3, 3000, 4, styles_in_use=4, num_styles=8, probability=1.0)
    points = [value.numpy() for key, value in draws.items() if "crossover" in key]
    assert points and all(set(p.tolist()) == {1, 2, 3} for p in points)
    assert all(np.bincount(p)[1:].min() > 900 for p in points)  # each of 3 values ~1000 of 3000
    none = style_mixing_draws(2, 3, 100, 4, styles_in_use=4, num_styles=8, probability=0.0)
    assert all((value.numpy() == 8).all() for key, value in none.items() if "crossover" in key)


# --- image files ----------------------------------------------------------------------------------


def test_load_square_crops_the_centre_losing_the_floor_of_half_the_excess_at_the_start(tmp_path):
    """A 7x4 image keeps columns 1..4, a 4x9 image rows 2..5 (excess 3 and 5: 1 and 2 lost at the
    start); the crop's x and y are not swapped. At the target side the resize changes nothing."""
    pixels = (np.arange(7 * 9).reshape(9, 7) * 3 % 256).astype(np.uint8)
    Image.fromarray(pixels[:4]).save(tmp_path / "wide.png")
    Image.fromarray(pixels[:, :4]).save(tmp_path / "tall.png")
    np.testing.assert_array_equal(load_square(tmp_path / "wide.png", 4, 1)[..., 0], pixels[:4, 1:5])
    np.testing.assert_array_equal(load_square(tmp_path / "tall.png", 4, 1)[..., 0], pixels[2:6, :4])



def test_16_bit_gray_images_are_scaled_by_255_over_65535(tmp_path):
    """A 16-bit gray pixel v becomes round(v / 257) (65535 -> 255, 257 k -> k): /256 would make every
    pixel from 32896 up one level too bright, /255 would saturate."""
    values = np.arange(256, dtype=np.uint16).reshape(16, 16) * 257
    values[0, :6] = [65535, 128, 129, 257 * 200 + 128, 257 * 200 + 129, 40000]
    Image.fromarray(values).save(tmp_path / "deep.png")
    expected = np.arange(256).reshape(16, 16)
    expected[0, :6] = [255, 0, 1, 200, 201, 156]  # 40000 / 257 = 155.64
    np.testing.assert_array_equal(load_square(tmp_path / "deep.png", 16, 1)[..., 0], expected)

def lanczos_by_hand(image, size):
    """PIL's antialiased Lanczos-3 shrink written out: per axis, output i averages input pixels
    around (i + 0.5) s with weights sinc(d) sinc(d / 3), d = (j + 0.5 - centre) / s, |d| < 3,
    normalized; width first, then height, rounding to uint8 after each pass as PIL does."""
    def one_axis(a):
        scale = a.shape[1] / size
        out = np.zeros((a.shape[0], size))
        for i in range(size):
            centre = (i + 0.5) * scale
            j = np.arange(max(0, int(centre - 3 * scale)), min(a.shape[1], int(math.ceil(centre + 3 * scale))))
            d = (j + 0.5 - centre) / scale
            w = np.where(np.abs(d) < 3, np.sinc(d) * np.sinc(d / 3), 0.0)
            out[:, i] = a[:, j] @ (w / w.sum())
        return np.clip(np.rint(out), 0, 255)
    return one_axis(one_axis(image.astype(np.float64)).T).T


def test_load_square_shrinks_with_lanczos(tmp_path):
    """The resize is Lanczos-3 (antialiased): within 1 level of the filter written out by hand (PIL
    rounds in fixed point); a bilinear or bicubic resize is several levels off on this noise."""
    pixels = np.random.default_rng(8).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    got = load_square(tmp_path / "noise.png", 6, 1)[..., 0].astype(int)
    assert np.abs(got - lanczos_by_hand(pixels, 6)).max() <= 1


# --- grids ----------------------------------------------------------------------------------------


def level(k):
    """The float in [-1, 1] that to_uint8 turns into k."""
    return k / 127.5 - 1.0


class CodeSampler:
    """A stand-in for Sampler whose 'generator' writes its inputs into pixels, so a grid's cells can
    be read back: 2x2 gray images, pixel (0, 0) = style input 0's first value, (0, 1) = style input
    1's, (1, 0) = the first noise image's value (0 without noise)."""
    num_styles, image_shape = 2, (2, 2, 1)
    interpolate = staticmethod(Sampler.interpolate)

    def mix(self, destination, source, start, stop):
        inside = (np.arange(self.num_styles) >= start) & (np.arange(self.num_styles) < stop)
        return tf.where(inside[:, None], source, destination)

    def as_styles(self, codes):
        return tf.convert_to_tensor(codes, tf.float32)

    def decode(self, codes, noise=None):
        codes = np.asarray(codes)
        images = np.full((len(codes), 2, 2, 1), -1.0, np.float32)
        images[:, 0, 0, 0], images[:, 0, 1, 0] = codes[:, 0, 0], codes[:, 1, 0]
        if noise is not None:
            images[:, 1, 0, 0] = np.asarray(noise[0])[:, 0, 0, 0]
        return tf.constant(images)


def test_a_mixed_cell_keeps_its_destinations_noise_images():
    """Cell (row j, column i) of a grid with per-image noise: style 0 from destination j, style 1
    from source i, destination j's noise (with 3 sources and 2 destinations, so a repeat/tile mix-up
    of the cells' noise shows)."""
    sources = np.array([[[level(10 + i)], [level(20 + i)]] for i in range(3)], np.float32)
    destinations = np.array([[[level(30 + j)], [level(40 + j)]] for j in range(2)], np.float32)
    ids = [50, 51, 52, 60, 61]  # sources' then destinations' noise
    noise = ImageNoise([np.array([level(k) for k in ids], np.float32).reshape(5, 1, 1, 1)], np.ones(5, bool))
    grid = mixing_grid_of_styles(CodeSampler(), sources, destinations, {"fine": (1, 2)}, noise=noise)["fine"]
    for j in range(2):
        for i in range(3):
            cell = grid[2 * (j + 1) : 2 * (j + 2), 2 * (i + 1) : 2 * (i + 2), 0]
            assert (cell[0, 0], cell[0, 1], cell[1, 0]) == (30 + j, 20 + i, 60 + j), (j, i)
        assert grid[2 * (j + 1), 0, 0] == 30 + j and grid[2 * (j + 1) + 1, 0, 0] == 60 + j  # destination j
    assert [grid[0, 2 * (i + 1), 0] for i in range(3)] == [10, 11, 12]  # sources along the top


def test_an_image_interpolation_row_has_noise_only_when_both_ends_have_it():
    """Row p runs from code a_p to b_p in `steps` evenly spaced points (left to right), framed by the
    two real images; its noise goes from one end's to the other's only when both ends have noise
    images, else every image of the row has none."""
    a = np.array([[[level(0)], [level(100)]]] * 3, np.float32)
    b = np.array([[[level(200)], [level(40)]]] * 3, np.float32)
    first = ImageNoise([np.array([level(90), level(10), level(10)], np.float32).reshape(3, 1, 1, 1)],
                       np.array([True, True, False]))
    last = ImageNoise([np.array([level(120), level(10), level(10)], np.float32).reshape(3, 1, 1, 1)],
                      np.array([True, False, True]))
    x1 = np.full((3, 2, 2, 1), level(7), np.float32)
    x2 = np.full((3, 2, 2, 1), level(250), np.float32)
    grid = interpolation_grid(CodeSampler(), image_pairs=(x1, x2), image_codes=(a, b), image_noise=(first, last),
                              steps=3)
    assert grid.shape == (6, 10, 1)
    for p in range(3):
        row = grid[2 * p : 2 * p + 2, :, 0]
        assert row[0, 0] == 7 and row[0, 8] == 250, p  # x1 first, x2 last
        assert [row[0, 2 * c] for c in range(1, 4)] == [0, 100, 200], p
        assert [row[0, 2 * c + 1] for c in range(1, 4)] == [100, 70, 40], p
        assert [row[1, 2 * c] for c in range(1, 4)] == ([90, 105, 120] if p == 0 else [0, 0, 0]), p


# --- REST protocol --------------------------------------------------------------------------------


def test_rest_integer_inputs_are_refused_outside_their_dtypes_range_at_both_ends():
    """uint8 pixels in [0, 255] and int32 in [-2^31, 2^31 - 1], both ends inclusive; one past
    either end is a 400 (never wrapped by the cast: -1 would become 255, 256 would become 0)."""
    signatures = contract.signatures([4, 4, 1], 3)
    for value, accepted in ((-1, False), (0, True), (255, True), (256, False)):
        image = np.full((4, 4, 1), 7)
        image[1, 2, 0] = value
        body = {"signature_name": "encode_uint8", "instances": [image.tolist()]}
        if accepted:
            _, inputs, rows = rest.parse_predict(body, signatures, 8)
            assert rows and inputs["images"].dtype == np.uint8 and inputs["images"][0, 1, 2, 0] == value
        else:
            with pytest.raises(rest.RequestError, match=r"\[0, 255\]") as refused:
                rest.parse_predict(body, signatures, 8)
            assert refused.value.status == 400
    for value, accepted in ((-(2**31) - 1, False), (-(2**31), True), (2**31 - 1, True), (2**31, False)):
        body = {"signature_name": "metadata", "inputs": [value]}
        if accepted:
            assert rest.parse_predict(body, signatures, 8)[1]["row"].tolist() == [value]
        else:
            with pytest.raises(rest.RequestError, match="int32 values must lie in"):
                rest.parse_predict(body, signatures, 8)


def test_rest_answers_of_several_outputs_in_tf_servings_two_forms():
    """TF-Serving's answer with several outputs: rows -> {"predictions": [{name: row i}, ...]},
    columns -> {"outputs": {name: batch}}; one output is given bare in either form."""
    outputs = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), "label": np.array([5, 6], np.int32)}
    assert rest.predict_response(outputs, rows=True) == {"predictions": [{"w": [1.0, 2.0], "label": 5},
                                                                         {"w": [3.0, 4.0], "label": 6}]}
    assert rest.predict_response(outputs, rows=False) == {"outputs": {"w": [[1.0, 2.0], [3.0, 4.0]], "label": [5, 6]}}
    one = {"w": outputs["w"]}
    assert rest.predict_response(one, rows=True) == {"predictions": [[1.0, 2.0], [3.0, 4.0]]}
    assert rest.predict_response(one, rows=False) == {"outputs": [[1.0, 2.0], [3.0, 4.0]]}


def test_rest_metadata_shapes_lead_with_an_unknown_batch_dimension():
    """signature_def: each tensor's dims are -1 (the batch) then one example's shape, as strings,
    with TF-Serving's dtype names."""
    signature = contract.signatures([4, 4, 1], 3)["encode_uint8"]
    definition = rest.signature_def(signature)
    images, w = definition["inputs"]["images"], definition["outputs"]["w"]
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "4", "4", "1"]
    assert [d["size"] for d in w["tensor_shape"]["dim"]] == ["-1", "3"]
    assert (images["dtype"], w["dtype"]) == ("DT_UINT8", "DT_FLOAT")
    assert definition["method_name"] == "tensorflow/serving/predict"
