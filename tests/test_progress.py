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
