"""Progress output for files: plain lines at each tenth of the way instead of Keras's bar, which
redraws itself with backspaces and colour codes (pytest's captured stdout is not a terminal)."""

import keras

from alae_tf.progress import ProgressLog, progress_bar, rate_text


def test_output_that_is_not_a_terminal_gets_a_line_per_tenth(capsys):
    progress = progress_bar(200, unit_name="image")
    assert isinstance(progress, ProgressLog)
    for _ in range(6):
        progress.add(30)
    progress.update(200, [("lpips", 0.28125), ("mse", 0.5)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["30/200", "60/200", "90/200", "120/200", "150/200", "180/200", "200/200"]
    for line in lines:
        count, unit, rate, per, eta, left = line.split()[:6]
        assert unit == "images" and float(rate.replace(",", "")) > 0 and per == "images/s" and eta == "ETA"
    assert lines[-1].endswith("ETA 0:00:00  lpips 0.2812  mse 0.5")


def test_silent_progress_prints_nothing(capsys):
    progress = progress_bar(10, verbose=False)
    assert isinstance(progress, keras.utils.Progbar)
    progress.update(10)
    assert capsys.readouterr().out == ""


def test_rates_are_written_without_an_exponent():
    assert [rate_text(r) for r in (0.6871, 4.172, 99.94, 2741.6, 123456.0)] == ["0.687", "4.17", "99.9", "2,742", "123,456"]


def test_train_lines_leave_each_fit_calls_first_step_out_of_the_speed(capsys, monkeypatch):
    """After a level change the next fit call traces its step anew (here 20 s): the speed and
    time left are those of the steps after it, as they are after the first step of a process."""
    from alae_tf import callbacks

    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock[0])
    lines = callbacks.ProgressLines(every=2, total=10)

    def fit(step_seconds, first_step):
        lines.on_train_begin()
        for offset, seconds in enumerate(step_seconds):
            lines.on_train_batch_begin(offset)
            clock[0] += seconds
            lines.on_step(first_step + offset, {"loss_d": 0.5})

    fit([10.0, 1.0, 1.0, 1.0], first_step=1)  # steps 1-4; step 1 traces (the process's first step)
    fit([20.0, 0.5, 0.5, 0.5], first_step=5)  # steps 5-8 after a level change: step 5 traces again
    out = capsys.readouterr().out.splitlines()
    shown = {line.split("  ")[0]: (line.split("  ")[-2], line.split("  ")[-1]) for line in out}
    # step 6: 1 step in 0.5 s once step 5's 20 s are left out (it read 2 steps in 20.5 s: ETA 0:00:41)
    assert shown == {"step 2/10": ("1 steps/s", "ETA 0:00:08"), "step 4/10": ("1 steps/s", "ETA 0:00:06"),
                     "step 6/10": ("2 steps/s", "ETA 0:00:02"), "step 8/10": ("2 steps/s", "ETA 0:00:01")}


def test_train_lines_include_a_first_step_that_is_due(capsys):
    """The process's first step was never printed: not step 1 at --log-every 1, nor the one step
    of a resume by one step (which then printed no line at all)."""
    from alae_tf import callbacks

    every_step = callbacks.ProgressLines(every=1, total=3)
    for step in (1, 2):
        every_step.on_step(step, {"loss_d": 0.5})
    one_step = callbacks.ProgressLines(every=100, total=21)
    one_step.on_step(21, {"loss_d": 0.25})
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in out] == ["step 1/3", "step 2/3", "step 21/21"]
    assert out[0].endswith("- steps/s  ETA -") and out[2] == "step 21/21  loss_d 0.25  - steps/s  ETA -"
