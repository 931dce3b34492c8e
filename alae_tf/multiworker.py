"""Training on several processes (hosts) with MultiWorkerMirroredStrategy, configured by TF_CONFIG.

Every launcher (Kubeflow's TFJob / TrainJob, Vertex AI, Ray Train's TensorflowTrainer, or two
terminals by hand) sets TF_CONFIG in each process:

    {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}

(a "chief" list of one address may come first; then the chief is that task, else worker 0).
Every process runs the same `python -m alae_tf.train` command with the same --out, which every
process must reach (a shared filesystem on several hosts): the chief writes the run directory,
the other workers read its checkpoints to resume and write nothing there.

`read_cluster` checks TF_CONFIG before TensorFlow sees it, so a bad one is one clear error on
every process rather than a hang or a crash inside TensorFlow.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import tensorflow as tf
from tensorflow.compiler.xla.tsl.protobuf.coordination_config_pb2 import CoordinatedJob
from tensorflow.python.eager import context

from alae_tf.errors import ConfigError

TASK_TYPES = ("chief", "worker")


@dataclass(frozen=True)
class Cluster:
    addresses: tuple[str, ...]  # every task's host:port, the chief first
    rank: int  # this task's position in `addresses`; 0 is the chief
    task: str  # as TF_CONFIG names it, e.g. "worker 1"
    jobs: tuple[tuple[str, int], ...]  # (task type, count) in TF_CONFIG, the chief's first

    @property
    def num_workers(self) -> int:
        return len(self.addresses)

    @property
    def address(self) -> str:
        return self.addresses[self.rank]

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def read_cluster(environ=os.environ) -> Cluster | None:
    """The cluster TF_CONFIG describes, or None without TF_CONFIG (or with only one task).
    Raises ConfigError naming the problem for a malformed TF_CONFIG."""
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ConfigError('TF_CONFIG needs a "cluster" object, e.g. {"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": 0}}')
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise ConfigError(f"TF_CONFIG's cluster has task types {unknown}; training uses only {list(TASK_TYPES)} "
                          "(no parameter servers or evaluators)")
    lists = {}
    for kind in TASK_TYPES:
        addresses = cluster.get(kind, [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) and _port(a) is not None for a in addresses):
            raise ConfigError(f'TF_CONFIG\'s cluster "{kind}" must be a list of "host:port" strings, got {addresses!r}')
        lists[kind] = addresses
    if len(lists["chief"]) > 1:
        raise ConfigError(f'TF_CONFIG\'s cluster has {len(lists["chief"])} chiefs; at most one')
    addresses = tuple(lists["chief"] + lists["worker"])
    if len(set(map(_same_place, addresses))) != len(addresses):
        raise ConfigError(f"TF_CONFIG's cluster names an address twice: {list(addresses)}"
                          " (localhost, 127.x.x.x and [::1] are one machine)")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in TASK_TYPES or type(task.get("index")) is not int:
        raise ConfigError(f'TF_CONFIG needs "task": {{"type": "worker" or "chief", "index": N}} for this process, '
                          f"got {task!r}")
    kind, index = task["type"], task["index"]
    if not 0 <= index < len(lists[kind]):
        raise ConfigError(f'TF_CONFIG\'s task is {kind} {index}, but its cluster has {len(lists[kind])} {kind} '
                          f"address(es) (indices 0 to {len(lists[kind]) - 1})")
    if len(addresses) < 2:
        return None
    rank = index if kind == "chief" else len(lists["chief"]) + index
    jobs = tuple((kind_, len(lists[kind_])) for kind_ in TASK_TYPES if lists[kind_])
    return Cluster(addresses, rank, f"{kind} {index}", jobs)


def check_port_free(cluster: Cluster) -> None:
    """This task's port must be free to bind: TensorFlow would abort the process (or wait) instead.
    Probed as gRPC binds, with SO_REUSEADDR: a port whose last connections are in TIME_WAIT (for a
    minute after a run of the same cluster ended) is free to it, and a listening one is not."""
    port = _port(cluster.address)
    with socket.socket(socket.AF_INET6 if cluster.address.startswith("[") else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise ConfigError(f"TF_CONFIG gives this task ({cluster.task}) the address "
                              f"{cluster.address}, but port {port} cannot be bound here ({exc.strerror})") from None


# A worker whose heartbeats stop for this long (or --worker-timeout, if shorter) is taken for dead.
# Heartbeats come from a thread of TensorFlow's own, so a worker busy tracing or writing grids still
# sends them. With the 300 s of --worker-timeout, the other workers of a killed one (kill -9 on a
# live host) waited ~240 s, 5 times in 6 (an audit, 2026-12-06): its reset connection is seen only
# sometimes.
HEARTBEAT_TIMEOUT_SECONDS = 30.0


def make_strategy(cluster: Cluster, timeout_seconds: float) -> tf.distribute.MultiWorkerMirroredStrategy:
    """MultiWorkerMirroredStrategy that gives up on a worker that never came after `timeout_seconds`,
    and on one that stopped sending heartbeats (died) after HEARTBEAT_TIMEOUT_SECONDS (or
    `timeout_seconds` if shorter): then the collectives of every other worker fail with
    tf.errors.UnavailableError. A worker that is alive but slow (tracing a new level, the chief
    writing grids) is waited for."""
    check_port_free(cluster)
    # TensorFlow's coordination service (started by the strategy) waits for every task at start
    # with no time limit; configured here first, with one. Private API of TF 2.21:
    # tests/test_multiworker.py starts one worker of two and expects the error below.
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{cluster.jobs[0][0]}/replica:0/task:0",
        coordinated_jobs=[CoordinatedJob(name=kind, num_tasks=count) for kind, count in cluster.jobs],
        cluster_register_timeout_in_ms=int(timeout_seconds * 1000),
        heartbeat_timeout_in_ms=int(min(timeout_seconds, HEARTBEAT_TIMEOUT_SECONDS) * 1000))
    missing = (f"{cluster.task} at {cluster.address}: not every worker of {list(cluster.addresses)} answered within "
               f"{timeout_seconds:g} s (--worker-timeout); start all of them, with the same cluster in TF_CONFIG")
    if cluster.is_chief:
        wait_for_other_workers(cluster, timeout_seconds, missing)
    with Watchdog(timeout_seconds + WATCHDOG_GRACE_SECONDS, f"{missing} (a process listens at every address, but not "
                  "every one joined: another program on a worker's port, or a worker started with another cluster "
                  "in its TF_CONFIG?)"):
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError):
            raise ConfigError(missing) from None


WATCHDOG_GRACE_SECONDS = 10.0  # TensorFlow's own time-out (where it keeps one) ends the wait first
# The watchdog: a child process that waits for its stdin to close (the strategy was made, or this
# process ended) and otherwise, at the deadline or at Ctrl-C, prints the error and kills this one.
WATCHDOG_CODE = """
import os, select, signal, sys
deadline, message, parent = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
try:
    done = select.select([sys.stdin], [], [], deadline)[0]
except KeyboardInterrupt:  # Ctrl-C reaches the whole process group, the parent too: it ends the wait if it can
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    done = select.select([sys.stdin], [], [], 1.0)[0]
    message = "interrupted while the workers were connecting"
if not done:
    sys.stderr.write(f"error: {message}\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


class Watchdog:
    """Bounds a wait inside TensorFlow that keeps no time limit and runs no Python (no thread, no
    signal handler): MultiWorkerMirroredStrategy's start on the chief, which leads the coordination
    service, waits for ever for a worker that listens but never registers (TF 2.21). At the deadline,
    or at Ctrl-C, a child process prints `error: {message}` and kills this one (exit code 137)."""

    def __init__(self, seconds: float, message: str):
        self.seconds, self.message = seconds, message

    def __enter__(self):
        self.child = subprocess.Popen([sys.executable, "-c", WATCHDOG_CODE, str(self.seconds), self.message,
                                       str(os.getpid())], stdin=subprocess.PIPE)
        return self

    def __exit__(self, *exc_info):
        self.child.stdin.close()
        self.child.wait()


def wait_for_other_workers(cluster: Cluster, timeout_seconds: float, missing: str) -> None:
    """The chief's wait for the other workers' servers to listen (each starts its server, then waits
    for the chief). The chief leads TensorFlow's coordination service, whose own wait for the
    others ignores the register timeout (TF 2.21: a chief alone waited for ever, inside C++ where
    Ctrl-C and SIGTERM did nothing), so it waits here first, in Python, with the timeout."""
    deadline = time.monotonic() + timeout_seconds
    waiting = list(cluster.addresses[1:])
    while waiting := [address for address in waiting if not _listening(address)]:
        if time.monotonic() > deadline:
            raise ConfigError(f"{missing} (not listening: {', '.join(waiting)})")
        time.sleep(0.5)


def _listening(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    try:
        socket.create_connection((host, _port(address)), timeout=1.0).close()
    except OSError:
        return False
    return True


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def _same_place(address: str) -> str:
    """The address with this machine's loopback names made one (localhost:P and 127.0.0.1:P are
    one port: the second task could never bind it, and the cluster would wait until its time-out)."""
    host, _, port = address.rpartition(":")
    loopback = host.lower() in ("localhost", "[::1]") or host.startswith("127.")
    return f"loopback:{port}" if loopback else address.lower()


def _port(address: str) -> int | None:
    host, _, port = address.rpartition(":")
    return int(port) if host and port.isdigit() and 0 < int(port) < 65536 else None


DATA_CONTENTS = "data.contents"  # a setting of its own in check_same_start: the image count and a hash of the names


def check_same_start(strategy: tf.distribute.Strategy, cluster: Cluster, step: int, checkpoints, settings: dict,
                     total: int) -> None:
    """Every worker must start from the same step of the same experiment. Each restores the newest
    checkpoint it finds in `checkpoints` (`step`: its step, 0 for none), so a worker that cannot see
    the chief's files would otherwise start over; and each resolves its own command's settings
    (`settings`, the run's config as a dict, with the data's contents as DATA_CONTENTS; `total`: the
    step to train to), so a worker started with another --batch-size or --seed trained its share of
    every batch from another experiment while the chief's config.yaml described its own (another
    --steps: a crash inside TensorFlow when one worker stopped first; another image folder: nothing
    said)."""
    names, digests = setting_digests(settings)
    row = [step, total, len(digests), *digests, *[0] * (MAX_SETTINGS - len(digests))]
    try:
        values = strategy.gather(strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant([row], tf.int64)), axis=0).numpy()
    except tf.errors.InternalError as exc:  # the first collective of workers whose TF_CONFIGs list other clusters
        if "is joining a group with size" not in str(exc):
            raise
        raise ConfigError(f"the workers were started with clusters of different sizes in TF_CONFIG (this one, "
                          f"{cluster.task}, lists {cluster.num_workers}: {list(cluster.addresses)}): every worker needs "
                          "the same cluster") from None
    steps, totals, counts = (values[:, column].tolist() for column in range(3))
    if len(set(steps)) > 1:
        raise ConfigError(f"the workers found different newest checkpoints (steps {steps}, 0: none) in "
                          f"{checkpoints}: every worker must read the chief's run directory (the same --out, on a "
                          "filesystem all of them share)")
    if len(set(totals)) > 1:
        raise ConfigError(f"the workers would train to different steps ({totals}, the chief's first): every worker "
                          "must run the same command (the same --steps or --epochs, and the same data)")
    differing = [name for column, name in enumerate(names, start=3) if len(set(values[:, column].tolist())) > 1]
    if DATA_CONTENTS in differing:
        raise ConfigError("the workers read different data (image folders or prepared datasets whose image count or "
                          "names differ): every worker's --data-path (data.path) must hold the same images, from "
                          "which the held-out split and the training order are drawn")
    if len(set(counts)) > 1 or differing:
        which = f" ({', '.join(differing)})" if differing and len(set(counts)) == 1 else ""
        raise ConfigError(f"the workers were started with different settings{which}: a --config file, or a flag "
                          "such as --batch-size or --seed, differs; every worker must run the same command")


MAX_SETTINGS = 128  # settings compared across workers (a config has 55): one gathered row of fixed size


def setting_digests(settings: dict) -> tuple[list[str], list[int]]:
    """(names, 63-bit digests) of a run's settings (`settings`: its config as a dict), one per
    setting such as "train.seed", sorted by name, apart from data.path (hosts may mount the data
    elsewhere): workers that differ are told which settings do."""
    leaves = {}

    def walk(value, name):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else key)
        elif name != "data.path":
            leaves[name] = value

    walk(settings, "")
    if len(leaves) > MAX_SETTINGS:
        raise ValueError(f"{len(leaves)} settings, more than MAX_SETTINGS = {MAX_SETTINGS}")
    names = sorted(leaves)
    digests = [int.from_bytes(hashlib.sha256(json.dumps([name, leaves[name]]).encode()).digest()[:8], "big") >> 1
               for name in names]
    return names, digests


STOP_KEY = "alae_tf/stop_after_step"
# What TensorFlow's own SIGTERM handler writes (the task's name, e.g. "/job:worker/task:1"): it is
# in place from the coordination service's start until StopOnSignal takes SIGTERM over, and only
# logs the signal.
TENSORFLOW_SIGTERM_KEY = "TF_DEFAULT_PREEMPTION_NOTICE_KEY"


@dataclass(frozen=True)
class AgreedStop:
    step: int  # every worker stops after this step
    reason: str  # e.g. "SIGTERM on worker 1"


class StopAgreement:
    """One stop step for every worker, whichever of them gets Ctrl-C or SIGTERM (a preempted host
    signals only its own): the first to propose a step writes it to the coordination service's
    key-value store, and every worker's watcher thread, blocked on that key from the start, reads
    it. `StopOnSignal` proposes the step after the one a signal came in; no other worker can have
    finished that step before the proposal was written, since it needs the proposer's share of
    its gradients, and the watcher learns it while that step still runs."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.agreed: AgreedStop | None = None
        self.proposed = False
        self.caught_by_tensorflow: str | None = None  # e.g. "SIGTERM on worker 1", for any worker to propose
        threading.Thread(target=self._watch, name="alae_tf stop agreement", daemon=True).start()
        threading.Thread(target=self._watch_tensorflow, name="alae_tf TensorFlow's SIGTERM", daemon=True).start()

    def _watch(self):
        if (value := _wait_for(STOP_KEY)) is not None:
            self._agree(value)

    def _watch_tensorflow(self):
        if (task := _wait_for(TENSORFLOW_SIGTERM_KEY)) is not None:
            job, _, index = task.removeprefix("/job:").partition("/task:")
            self.caught_by_tensorflow = f"SIGTERM on {job} {index}"

    def _agree(self, value: str):
        step, _, reason = value.partition(" ")
        self.agreed = AgreedStop(int(step), reason)

    def propose(self, step: int, reason: str) -> None:
        if self.proposed:
            return
        self.proposed = True
        try:
            context.context().set_config_key_value(STOP_KEY, f"{step} {reason}")
        except tf.errors.AlreadyExistsError:  # another worker proposed first: its step stands
            self._agree(context.context().get_config_key_value(STOP_KEY))  # at once, not when the watcher gets to it
            return
        self.agreed = AgreedStop(step, reason)


def _wait_for(key: str) -> str | None:
    """The value of `key` in the coordination service, once a worker sets it; None when the process
    ends first (and TensorFlow's coordination agent with it)."""
    try:
        return context.context().get_config_key_value(key)
    except tf.errors.OpError:
        return None
