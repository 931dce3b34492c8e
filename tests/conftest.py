import atexit
import os
import shutil
import signal
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests stop commands with signals as a terminal would. A suite started in the background
# (`pytest &` in a script, nohup) inherits SIGINT and SIGHUP ignored, and a command keeps a signal it
# was started ignoring (tests/test_stop_signals.py): set both as an interactive shell starts Python.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
# Image folders' check results (alae_tf/data/folder_check.py) go to a cache of this test run, not
# ~/.cache; removed when the process ends (each xdist worker has its own).
os.environ["ALAE_TF_CACHE"] = tempfile.mkdtemp(prefix="alae_tf_test_cache_")
atexit.register(shutil.rmtree, os.environ["ALAE_TF_CACHE"], ignore_errors=True)

import alae_tf  # noqa: E402,F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs, so MirroredStrategy can run 2 replicas; must happen before TF uses devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from training_data import tiny_mlp_config, tiny_mlp_images  # noqa: E402


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def mirrored():
    """One 2-replica MirroredStrategy for the whole session: a second strategy object in the same
    process restarts the collective instance keys, and its all-reduces then collide with the first
    one's cached collectives ("Shape mismatch in the collective instance 100")."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def tiny_config():
    return tiny_mlp_config()


@pytest.fixture
def tiny_images():
    return tiny_mlp_images()


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """(run dir, export dir) of a 20-step MNIST run exported as version 1 (built once per test run)."""
    from exported_run import exported_model

    return exported_model(tmp_path_factory)


@pytest.fixture(scope="session")
def style_exported(tmp_path_factory):
    """(run dir, export dir) of a 20-step tiny_style run exported as version 1 (built once per test run)."""
    from exported_run import exported_style_model

    return exported_style_model(tmp_path_factory)


@pytest.fixture(scope="session")
def export_dir(exported):
    return exported[1]


@pytest.fixture(scope="session")
def saved(export_dir):
    from exported_run import NAME
    from serving import layout

    return tf.saved_model.load(str(layout.saved_model_dir(export_dir, NAME, 1)))
