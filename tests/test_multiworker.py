"""Training on two worker processes on 127.0.0.1 with MultiWorkerMirroredStrategy (TF_CONFIG):
the same weights as one process, a level crossed, only the chief writing the run, a killed worker
resumed from the chief's checkpoint, and a bad TF_CONFIG refused on every process.

The workers are real `python -m alae_tf.train` processes (CPU only, free ports); every wait is bounded.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from alae_tf import multiworker, train, training
from alae_tf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
WORKER_TIMEOUT = 10  # --worker-timeout: how long the others wait for a dead or missing worker
SHORT_TIMEOUT = 2  # where no worker is to come, the tests wait only this long
PROCESS_LIMIT = 240  # seconds any worker process may take in these tests
STEPS = 62  # off the log interval: the last row is written by log_saved_step, which must not be a collective
SMALL_MLP = f"""
preset: mnist_small
model: {{hidden_dim: 64, mapping_layers: 2}}
train: {{steps: {STEPS}, batch_size: 16, checkpoint_every: 10, sample_every: 30, log_every: 5}}
"""


def free_ports(count):
    """Ports free now, below Linux's ephemeral range (32768 up): the workers bind them after
    importing TensorFlow, seconds later, and a port the kernel gave out (bind to 0) could by then
    be the local port of another test's connection, or held by one in TIME_WAIT."""
    ports = []
    while len(ports) < count:
        port = random.SystemRandom().randrange(20000, 32768)  # not pytest-randomly's reseeded stream
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def tf_config(ports, index) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


class Workers:
    """Worker processes of one cluster, each with its own log file and TMPDIR."""

    def __init__(self, root: Path, args, configs, outs=None, tf_log_level="2", own_args=None):
        """`outs`: each worker's --out, when they differ (a cluster misconfigured); `own_args`: more
        arguments for each worker."""
        self.root = root
        self.processes, self.logs = [], []
        for index, config in enumerate(configs):
            scratch = root / f"tmp{index}"
            scratch.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "TF_CONFIG": config, "TMPDIR": str(scratch), "CUDA_VISIBLE_DEVICES": "",
                   "TF_CPP_MIN_LOG_LEVEL": tf_log_level}
            log = root / f"worker{index}-{time.monotonic_ns()}.log"
            with log.open("w") as handle:
                command = [sys.executable, "-m", "alae_tf.train", "--verbose", "0",
                           "--worker-timeout", str(WORKER_TIMEOUT), *args, *(["--out", str(outs[index])] if outs else []),
                           *(own_args[index] if own_args else [])]
                self.processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=handle,
                                                       stderr=subprocess.STDOUT))
            self.logs.append(log)

    def wait(self, limit=PROCESS_LIMIT) -> list[int]:
        deadline = time.monotonic() + limit
        try:
            return [process.wait(timeout=max(1.0, deadline - time.monotonic())) for process in self.processes]
        finally:
            self.kill()

    def kill(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()  # SIGKILL: a worker blocked inside TensorFlow may not act on SIGTERM
                process.wait()

    def output(self, index) -> str:
        return self.logs[index].read_text()

    def scratch_left(self) -> list[Path]:
        """The workers' checkpoint scratch folders still in their TMPDIRs."""
        return [path for index in range(len(self.processes)) for path in (self.root / f"tmp{index}").glob("alae_tf-*")]


def start_cluster(root, args, count=2, tf_log_level="2"):
    ports = free_ports(count)
    return Workers(root, args, [tf_config(ports, index) for index in range(count)], tf_log_level=tf_log_level)


def checkpoint_values(prefix) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(prefix))
    values = {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}
    return {name: value for name, value in values.items() if value.dtype.kind == "f"}


def assert_same_weights(prefix, reference_prefix):
    ours, reference = checkpoint_values(prefix), checkpoint_values(reference_prefix)
    assert sorted(ours) == sorted(reference) and len(ours) > 50
    for name in reference:  # summed gradients of two workers differ from one sum by rounding only
        np.testing.assert_allclose(ours[name], reference[name], atol=1e-4, rtol=1e-4, err_msg=name)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("multiworker") / "small.yaml"
    path.write_text(SMALL_MLP)
    return path


@pytest.fixture(scope="module")
def one_process_run(small_config, tmp_path_factory):
    """The reference: the same run in this process, on one device."""
    run = tmp_path_factory.mktemp("multiworker") / "one_process"
    assert train.main(["--config", str(small_config), "--out", str(run), "--verbose", "0"]) == 0
    return run


def assert_only_the_chief_wrote(run, one_process_run, workers_started):
    """The run directory holds what one process writes (one log row per logged step, the same
    checkpoints and grids), and no worker left its scratch folder (a killed one's is removed by
    its restart)."""
    rows = (run / "log.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in rows[1:]] == [*range(5, STEPS + 1, 5), STEPS]  # and the last step
    for folder in ("checkpoints", "samples"):
        assert sorted(p.name for p in (run / folder).iterdir()) == sorted(p.name for p in (one_process_run / folder).iterdir())
    for workers in workers_started:
        assert workers.scratch_left() == []


@pytest.mark.slow  # the killed-worker test below checks the same after a resume, in the default suite
def test_two_workers_train_the_weights_of_one_process_and_only_the_chief_writes(small_config, one_process_run, tmp_path):
    run = tmp_path / "run"
    workers = start_cluster(tmp_path, ["--config", str(small_config), "--out", str(run)])
    assert workers.wait() == [0, 0], workers.output(0) + workers.output(1)
    assert "2 workers (this is worker 0), 2 replica(s)" in workers.output(0)
    assert "2 workers (this is worker 1), 2 replica(s)" in workers.output(1)
    assert_same_weights(run / "checkpoints" / f"ckpt-{STEPS}", one_process_run / "checkpoints" / f"ckpt-{STEPS}")
    assert_only_the_chief_wrote(run, one_process_run, [workers])


@pytest.mark.slow
def test_a_killed_worker_is_missed_within_the_heartbeat_limit_whatever_the_worker_timeout(small_config, tmp_path):
    """With --worker-timeout 300 the other worker of one killed by SIGKILL waited ~240 s, 5 times
    in 6 (an audit): its heartbeats' limit was the same 300 s, and the reset connection that stops
    it at once is seen only sometimes."""
    from alae_tf.multiworker import HEARTBEAT_TIMEOUT_SECONDS

    run = tmp_path / "run"
    workers = start_cluster(tmp_path, ["--config", str(small_config), "--out", str(run), "--worker-timeout", "300"])
    deadline = time.monotonic() + PROCESS_LIMIT
    while not (run / "checkpoints" / "ckpt-10.index").exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in workers.processes), workers.output(0)
        time.sleep(0.02)
    workers.processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert workers.processes[0].wait(timeout=HEARTBEAT_TIMEOUT_SECONDS + 60) == 2
    print(f"the chief stopped {time.monotonic() - killed_at:.1f} s after worker 1 was killed")
    assert "error: a worker stopped answering" in workers.output(0)


@pytest.mark.parametrize("killed", [1, pytest.param(0, marks=pytest.mark.slow)], ids=["worker 1", "the chief"])
def test_a_killed_worker_stops_the_other_and_both_resume_from_the_chiefs_checkpoint(killed, small_config, one_process_run,
                                                                                     tmp_path):
    run = tmp_path / "run"
    args = ["--config", str(small_config), "--out", str(run)]
    workers = start_cluster(tmp_path, args)
    deadline = time.monotonic() + PROCESS_LIMIT
    while not (run / "checkpoints" / "ckpt-10.index").exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in workers.processes), workers.output(0)
        time.sleep(0.02)
    workers.processes[killed].send_signal(signal.SIGKILL)
    survivor = 1 - killed
    codes = workers.wait()
    assert codes[survivor] == 2, workers.output(survivor)
    assert "error: a worker stopped answering" in workers.output(survivor)
    saved = max(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("ckpt-*.index"))
    assert 10 <= saved < STEPS

    restarted = start_cluster(tmp_path, args)
    assert restarted.wait() == [0, 0], restarted.output(0) + restarted.output(1)
    for index in (0, 1):
        assert f"resuming at step {saved}); 2 workers (this is worker {index}), 2 replica(s)" in restarted.output(index)
    assert f"done: {STEPS} steps; samples in {run / 'samples'}" in restarted.output(0)
    assert f"done: {STEPS} steps; the chief wrote the run" in restarted.output(1)  # it named files it never wrote
    # Two workers, killed and resumed, end where one process does without a break.
    assert_same_weights(run / "checkpoints" / f"ckpt-{STEPS}", one_process_run / "checkpoints" / f"ckpt-{STEPS}")
    assert_only_the_chief_wrote(run, one_process_run, [workers, restarted])


@pytest.mark.parametrize("signalled, when, signum", [
    (1, "training", signal.SIGTERM), pytest.param(0, "training", signal.SIGTERM, marks=pytest.mark.slow),
    (1, "connected", signal.SIGTERM),
    # the agreement of "worker 1" above; a hang-up's own handling: test_train_cli's hang-up test
    pytest.param(1, "training", signal.SIGHUP, marks=pytest.mark.slow),
], ids=["worker 1", "the chief", "worker 1 starting", "worker 1's terminal hung up"])
def test_a_stop_signal_to_one_worker_stops_every_worker_after_the_same_step_and_the_chief_saves_it(
        signalled, when, signum, small_config, tmp_path):
    """A preempted host signals its own worker only: the others were left in a collective until
    --worker-timeout, then failed without saving (the chief's newest checkpoint was up to
    checkpoint_every steps old). A SIGTERM while the workers start (as soon as TensorFlow's
    coordination service has connected them, no step yet) was caught by TensorFlow's own handler
    and only logged: that worker trained on to the end."""
    run = tmp_path / "run"
    workers = start_cluster(tmp_path, ["--config", str(small_config), "--out", str(run)],
                            tf_log_level="2" if when == "training" else "0")  # INFO: the connection's line
    deadline = time.monotonic() + PROCESS_LIMIT
    while not ((run / "checkpoints" / "ckpt-10.index").exists() if when == "training" else
               "Coordination agent has successfully connected" in workers.output(signalled)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in workers.processes), workers.output(0)
        time.sleep(0.002)
    workers.processes[signalled].send_signal(signum)
    name, codes = signal.Signals(signum).name, [143, 143]  # a worker without a signal stops as by SIGTERM
    codes[signalled] = 128 + signum
    assert workers.wait() == codes, workers.output(0) + workers.output(1)
    saved = max(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("ckpt-*.index"))
    assert (10 < saved < STEPS) if when == "training" else saved == 2  # the step after the first
    if when == "training":  # (starting, TensorFlow's handler may take the signal: it says nothing)
        assert f"{name}: stopping every worker after the next step" in workers.output(signalled)
    assert f"{name} on worker {signalled}: every worker stops after step {saved}, then saves it" in \
        workers.output(1 - signalled)
    for index in (0, 1):
        assert f"interrupted: saved step {saved} to " in workers.output(index)
    assert int((run / "log.csv").read_text().splitlines()[-1].split(",")[0]) == saved
    assert workers.scratch_left() == []


@pytest.mark.slow  # ~2 minutes on 2 cores: each worker traces two levels
def test_a_style_run_crosses_a_level_on_two_workers(tmp_path):
    run = tmp_path / "run"
    workers = start_cluster(tmp_path, ["--preset", "tiny_style", "--steps", "40", "--out", str(run)])
    assert workers.wait() == [0, 0], workers.output(0) + workers.output(1)
    for index in (0, 1):
        assert "level 0 (4x4): steps 0 -> " in workers.output(index)
        assert "level 1 (8x8): steps " in workers.output(index) and "-> 40" in workers.output(index)
    assert (run / "checkpoints" / "ckpt-40.index").exists()
    assert list((run / "samples").glob("samples_0000040.png"))
    assert workers.scratch_left() == []


@pytest.mark.parametrize("problem, config, message", [
    ("malformed", "{not json", "TF_CONFIG is not valid JSON"),
    ("no index", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker"}}),
     '"index": N'),
    ("index out of range", tf_config([1, 2], 2), "task is worker 2, but its cluster has 2"),
])
def test_a_bad_tf_config_is_one_error_before_anything_is_written(problem, config, message, small_config, tmp_path,
                                                                 monkeypatch, capsys):
    """What every process of the cluster does with it (each reads its own TF_CONFIG the same way)."""
    monkeypatch.setenv("TF_CONFIG", config)
    assert train.main(["--config", str(small_config), "--out", str(tmp_path / "run"), "--verbose", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0]
    assert not (tmp_path / "run").exists()


def test_workers_that_find_different_checkpoints_stop_with_one_line_naming_it(small_config, tmp_path):
    """Each --out its own (not a filesystem all share): the chief's restore broadcast its weights
    before the steps were compared; the worker, with nothing to restore, did not join it, and the
    chief blamed its checkpoint ("does not fit this run's model") while the worker died in a traceback."""
    assert train.main(["--config", str(small_config), "--out", str(tmp_path / "chief"), "--steps", "10",
                       "--verbose", "0"]) == 0
    ports = free_ports(2)
    workers = Workers(tmp_path, ["--config", str(small_config), "--steps", "20"], [tf_config(ports, 0), tf_config(ports, 1)],
                      outs=[tmp_path / "chief", tmp_path / "worker"])
    assert workers.wait(limit=120) == [2, 2]
    for index in (0, 1):
        errors = [line for line in workers.output(index).splitlines() if line.startswith("error: ")]
        assert errors == [f"error: the workers found different newest checkpoints (steps [10, 0], 0: none) in "
                          f"{tmp_path / ('chief' if index == 0 else 'worker') / 'checkpoints'}: every worker must read "
                          "the chief's run directory (the same --out, on a filesystem all of them share)"], \
            workers.output(index)
        assert "Traceback" not in workers.output(index)


@pytest.mark.slow  # check_same_start's data branch in-process: test_what_check_same_start_finds_different_names_it
def test_workers_reading_different_image_folders_stop_with_one_line(tmp_path):
    """Workers whose --data-path folders differed by one image trained together without a word
    (an audit: 200 images on one, 199 on the other); only the chief's folder was recorded."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in (("a", 40), ("b", 39)):
        (tmp_path / name).mkdir()
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (32, 32), np.uint8)).save(tmp_path / name / f"{index:02d}.png")
    config = tmp_path / "folder.yaml"  # image folders are read at power-of-two sides
    config.write_text(SMALL_MLP.replace("mapping_layers: 2", "mapping_layers: 2, image_shape: [32, 32, 1]"))
    ports = free_ports(2)
    workers = Workers(tmp_path, ["--config", str(config), "--out", str(tmp_path / "run"), "--steps", "20",
                                 "--dataset", "folder"], [tf_config(ports, 0), tf_config(ports, 1)],
                      own_args=[["--data-path", str(tmp_path / "a")], ["--data-path", str(tmp_path / "b")]])
    assert workers.wait(limit=120) == [2, 2]
    for index in (0, 1):
        errors = [line for line in workers.output(index).splitlines() if line.startswith("error: ")]
        assert errors == ["error: the workers read different data (image folders or prepared datasets whose image "
                          "count or names differ): every worker's --data-path (data.path) must hold the same images, "
                          "from which the held-out split and the training order are drawn"], workers.output(index)


@pytest.mark.parametrize("worker_args, message", [
    (["--seed", "1", "--batch-size", "8"], "the workers were started with different settings (train.batch_size, "
                                           "train.seed): a --config file, or a flag such as --batch-size or --seed, "
                                           "differs; every worker must run the same command"),
    pytest.param(["--steps", "30"], "the workers would train to different steps ([20, 30], the chief's first): every "
                 "worker must run the same command (the same --steps or --epochs, and the same data)",
                 marks=pytest.mark.slow),  # in-process: test_what_check_same_start_finds_different_names_it
])
def test_workers_started_with_different_settings_stop_with_one_line_naming_it(small_config, tmp_path, worker_args,
                                                                             message):
    """Another --seed or --batch-size on one worker trained silently (its share of every batch from
    another experiment, config.yaml the chief's); another --steps crashed both inside TensorFlow."""
    ports = free_ports(2)
    workers = Workers(tmp_path, ["--config", str(small_config), "--out", str(tmp_path / "run"), "--steps", "20"],
                      [tf_config(ports, 0), tf_config(ports, 1)], own_args=[[], worker_args])
    assert workers.wait(limit=120) == [2, 2]
    for index in (0, 1):
        errors = [line for line in workers.output(index).splitlines() if line.startswith("error: ")]
        assert errors == [f"error: {message}"] and "Traceback" not in workers.output(index), workers.output(index)
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def test_a_port_in_use_stops_its_worker_and_the_other_gives_up_waiting(small_config, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1], *free_ports(1)]
        started = time.monotonic()
        workers = Workers(tmp_path, ["--config", str(small_config), "--out", str(tmp_path / "run"),
                                     "--worker-timeout", str(SHORT_TIMEOUT)], [tf_config(ports, 0), tf_config(ports, 1)])
        assert workers.wait(limit=120) == [2, 2]
    assert time.monotonic() - started < 90
    assert f"port {ports[0]} cannot be bound here" in workers.output(0)
    assert f"not every worker of ['127.0.0.1:{ports[0]}', '127.0.0.1:{ports[1]}'] answered within " \
           f"{SHORT_TIMEOUT} s" in workers.output(1)


def test_a_chief_whose_other_worker_never_starts_or_never_joins_gives_up_after_the_timeout(small_config, tmp_path):
    """TensorFlow's coordination leader waited for ever (Ctrl-C and SIGTERM ignored; only SIGKILL
    ended it); worker 1 alone already gave up (the test above). The chief now waits in Python for
    the other addresses to listen; one that listens but never joins (another program on the port,
    a worker whose TF_CONFIG names another cluster) kept it in TensorFlow's wait: a watchdog
    process ends it after --worker-timeout and a grace (exit code 137, killed)."""
    absent, listened = free_ports(2), free_ports(2)
    started = time.monotonic()
    with socket.socket() as squatter:  # a program that is not a worker, on the second cluster's worker 1 port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", listened[1]))
        squatter.listen()
        workers = Workers(tmp_path, ["--config", str(small_config), "--worker-timeout", str(SHORT_TIMEOUT)],
                          [tf_config(absent, 0), tf_config(listened, 0)], outs=[tmp_path / "absent", tmp_path / "listened"])
        assert workers.wait(limit=150) == [2, -signal.SIGKILL]
    assert time.monotonic() - started < 120
    answered = (f"answered within {SHORT_TIMEOUT} s (--worker-timeout); start all of them, with the same cluster in "
                "TF_CONFIG")
    for index, (ports, reason) in enumerate(((absent, f"not listening: 127.0.0.1:{absent[1]}"),
                                             (listened, "a process listens at every address, but not every one "
                                              "joined: another program on a worker's port, or a worker started with "
                                              "another cluster in its TF_CONFIG?"))):
        lines = [line for line in workers.output(index).splitlines() if line.startswith("error: ")]
        assert lines == [f"error: worker 0 at 127.0.0.1:{ports[0]}: not every worker of ['127.0.0.1:{ports[0]}', "
                         f"'127.0.0.1:{ports[1]}'] {answered} ({reason})"], workers.output(index)


def test_workers_whose_clusters_differ_in_size_stop_with_one_line_naming_it(small_config, tmp_path):
    """Worker 1 listing a third worker: both died in a TensorFlow InternalError traceback (exit 1)."""
    ports = free_ports(3)
    workers = Workers(tmp_path, ["--config", str(small_config), "--out", str(tmp_path / "run"), "--steps", "20"],
                      [tf_config(ports[:2], 0), tf_config(ports, 1)])
    assert workers.wait(limit=120) == [2, 2]
    for index, listed in ((0, ports[:2]), (1, ports)):
        errors = [line for line in workers.output(index).splitlines() if line.startswith("error: ")]
        addresses = [f"127.0.0.1:{port}" for port in listed]
        assert errors == [f"error: the workers were started with clusters of different sizes in TF_CONFIG (this one, "
                          f"worker {index}, lists {len(listed)}: {addresses}): every worker needs the same cluster"], \
            workers.output(index)
        assert "Traceback" not in workers.output(index)


def test_a_port_left_in_time_wait_by_the_last_run_is_free_and_a_listening_one_is_not():
    """Restarting the workers right after a run ended (the README's resume) found the chief's port
    in TIME_WAIT, which a plain bind refuses but gRPC's (SO_REUSEADDR) takes."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's listener (TensorFlow's server)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: its port goes into TIME_WAIT
        client.close()
    cluster = multiworker.Cluster(addresses=(f"127.0.0.1:{port}",), rank=0, task="worker 0", jobs=(("worker", 1),))
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("", port))  # what the check did
    multiworker.check_port_free(cluster)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("", port))
        taken.listen()
        with pytest.raises(ConfigError, match=f"port {port} cannot be bound here"):
            multiworker.check_port_free(cluster)


class TwoWorkersGather:
    """What a two-worker strategy's gather gives the chief, in one process: its own row, then the
    row worker 1 brought (`other`; None: the same as the chief's)."""

    def __init__(self, other=None):
        self.other, self.row = other, None

    def experimental_distribute_values_from_function(self, value_fn):
        return value_fn(None)

    def gather(self, value, axis):
        self.row = value
        return tf.concat([value, value if self.other is None else self.other], axis)


def check_two_workers(chief: dict, other: dict):
    """check_same_start on the chief, worker 1 having started with `other` (the same keyword
    arguments: step, settings, total)."""
    worker_1 = TwoWorkersGather()
    multiworker.check_same_start(worker_1, None, checkpoints="RUN/checkpoints", **other)
    multiworker.check_same_start(TwoWorkersGather(worker_1.row), None, checkpoints="RUN/checkpoints", **chief)


def with_setting(settings, section, key, value):
    return {**settings, section: {**settings[section], key: value}}


@pytest.mark.parametrize("changed, message", [
    (lambda start: {**start, "step": 10},
     "the workers found different newest checkpoints (steps [0, 10], 0: none) in RUN/checkpoints"),
    (lambda start: {**start, "total": 30},
     "the workers would train to different steps ([20, 30], the chief's first): every worker must run the same "
     "command (the same --steps or --epochs, and the same data)"),
    (lambda start: {**start, "settings": with_setting(start["settings"], "data", "contents", "39 images, fedcba98")},
     "the workers read different data (image folders or prepared datasets whose image count or names differ)"),
    (lambda start: {**start, "settings": with_setting(start["settings"], "train", "seed", 1)},
     "the workers were started with different settings (train.seed): a --config file, or a flag such as "
     "--batch-size or --seed, differs"),
], ids=["checkpoint", "steps", "data", "seed"])
def test_what_check_same_start_finds_different_names_it(changed, message):
    from alae_tf.config import load_preset

    settings = load_preset("mnist").to_dict()
    settings["data"]["contents"] = "40 images, 01234567"
    chief = dict(step=0, settings=settings, total=20)
    check_two_workers(chief, chief)
    with pytest.raises(ConfigError) as raised:
        check_two_workers(chief, changed(chief))
    assert str(raised.value).startswith(message)


def test_each_setting_has_its_own_digest_and_the_data_path_none():
    from alae_tf.config import load_preset

    settings = load_preset("mnist").to_dict()
    names, digests = multiworker.setting_digests(settings)
    assert "train.seed" in names and "data.dataset" in names and "data.path" not in names
    assert len(names) == len(set(digests)) <= multiworker.MAX_SETTINGS  # a column per setting, each its own
    moved = {**settings, "data": {**settings["data"], "path": "/elsewhere"}}
    assert multiworker.setting_digests(moved) == (names, digests)
    reseeded = {**settings, "train": {**settings["train"], "seed": 1}}
    changed = [name for name, a, b in zip(names, digests, multiworker.setting_digests(reseeded)[1]) if a != b]
    assert changed == ["train.seed"]


def test_read_cluster_orders_the_chief_first_and_refuses_what_it_cannot_use():
    cluster = {"chief": ["a:1"], "worker": ["b:2", "c:3"]}
    config = lambda task: {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}  # noqa: E731
    chief = multiworker.read_cluster(config({"type": "chief", "index": 0}))
    second = multiworker.read_cluster(config({"type": "worker", "index": 1}))
    assert (chief.rank, chief.is_chief, chief.address) == (0, True, "a:1")
    assert (second.rank, second.is_chief, second.address, second.task) == (2, False, "c:3", "worker 1")
    assert second.jobs == (("chief", 1), ("worker", 2)) and second.num_workers == 3
    assert multiworker.read_cluster({}) is None
    one = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}})}
    assert multiworker.read_cluster(one) is None  # one task: nothing to distribute
    bad = {
        "ps": ({"worker": ["a:1", "b:2"], "ps": ["c:3"]}, r"task types \['ps'\]"),
        "no port": ({"worker": ["a", "b:2"]}, "list of \"host:port\" strings"),
        "twice": ({"worker": ["a:1", "a:1"]}, "names an address twice"),
        # one port under two names: the second task timed out instead (host names are case-blind)
        "aliases": ({"chief": ["localhost:5"], "worker": ["127.0.0.1:5"]}, "names an address twice"),
        "v6 alias": ({"worker": ["[::1]:5", "LOCALHOST:5"]}, "names an address twice"),
        "case": ({"worker": ["Host-A:5", "host-a:5"]}, "names an address twice"),
    }
    for cluster_, message in bad.values():
        with pytest.raises(ConfigError, match=message):
            multiworker.read_cluster({"TF_CONFIG": json.dumps({"cluster": cluster_, "task": {"type": "worker", "index": 0}})})
    with pytest.raises(ConfigError, match='"index": N'):  # JSON's true was read as index 1 (a bool is an int)
        multiworker.read_cluster({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                           "task": {"type": "worker", "index": True}})})


@pytest.mark.parametrize("seconds", ["0.0001", "0", "inf", "nan", "1e300", "-5"])
def test_a_worker_timeout_tensorflow_cannot_keep_is_refused(seconds, capsys):
    """0.0001 s became 0 ms, which TensorFlow reads as no limit (a wait for ever); inf and 1e300
    crashed in a traceback."""
    with pytest.raises(SystemExit) as exited:
        train.parse_args(["--worker-timeout", seconds])
    assert exited.value.code == 2
    assert f"argument --worker-timeout: {float(seconds):g} must lie between 1 and 604800 seconds (a week)" in \
        capsys.readouterr().err


def test_multiworker_strategy_needs_tf_config_and_refuses_jit_on_cpus(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs TF_CONFIG naming two or more tasks"):
        training.make_strategy("multiworker", jit=False)
    # Seen with two workers: "Collectives are not yet implemented for CPU devices when compiling
    # with XLA", then both processes abort ("double free or corruption").
    monkeypatch.setenv("TF_CONFIG", tf_config(free_ports(2), 0))
    with pytest.raises(ConfigError, match=r"XLA \(--jit, or jit: true in a resumed run's config.yaml\) with several workers is not supported on CPU devices"):
        training.make_strategy("auto", jit=True)
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ConfigError, match=r"with --strategy mirrored is not supported on CPU devices .*; pass --no-jit"):
        training.make_strategy("mirrored", jit=True)  # e.g. a run whose config.yaml records jit: true, resumed so


def test_a_stopped_worker_is_told_by_the_line_of_tensorflows_error_that_says_what_happened():
    """The error line quoted the header of TensorFlow's message ("Detected at node ... (most recent
    call last):") instead of what happened."""
    from alae_tf.errors import first_line

    message = ("Graph execution error:\n\nDetected at node fused_adam/CollectiveReduceV2 defined at (most recent call last):\n"
               '  File "<frozen runpy>", line 198, in _run_module_as_main\n\n'
               '  File "/work/main/alae_tf/train.py", line 330, in train\n\n'
               "Collective ops is aborted by: failed to connect to all addresses\n"
               "The error could be from a previous operation. Restart your program to reset.\n"
               "\t [[{{node fused_adam/CollectiveReduceV2}}]] [Op:__inference_one_step_on_data_1234]")
    assert first_line(tf.errors.UnavailableError(None, None, message)) == \
        "Collective ops is aborted by: failed to connect to all addresses"
    assert first_line(tf.errors.UnavailableError(None, None, "Socket closed")) == "Socket closed"
    # a restore's error names the function it ran in first (run_dir quoted it so before they shared this)
    restore = "{{function_node __inference_restore_5}} Tensor's shape [50,1024] is not compatible with [784,1024]"
    assert first_line(tf.errors.InvalidArgumentError(None, None, restore)) == \
        "Tensor's shape [50,1024] is not compatible with [784,1024]"
