"""Import TensorFlow without the start-up lines it prints on every CPU machine (and, in the
project's commands, without a traceback when Ctrl-C comes meanwhile).

`import alae_tf` does not import TensorFlow (a command's --help answers in a fraction of a second);
it puts `QuietTensorFlowImport` first among Python's finders, so that the first import of
TensorFlow afterwards, by any module, is a quiet one.

TensorFlow 2.21's native code logs before it initialises its logging, and abseil then prints
every message whatever TF_CPP_MIN_LOG_LEVEL says (abseil-cpp pull requests 1718 and 1957): a
dozen lines, among them an "E0000 ... failed call to cuInit" that reads like a failure, before
every command's own output. Those lines are dropped here; anything else written to stderr
meanwhile is passed on.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

ALWAYS_DROPPED = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"  # alae_tf turns them on itself (alae_tf/__init__.py)
    r"|cpu_feature_guard|To enable the following instructions: "
)
# Where an NVIDIA driver is installed these say why its GPU went unused, so they stay.
NO_GPU_DROPPED = re.compile(r"Could not find cuda drivers on your machine|failed call to cuInit")


def nvidia_driver_present() -> bool:
    return os.path.exists("/proc/driver/nvidia")


def dropped(line: str, gpu_machine: bool) -> bool:
    return bool(ALWAYS_DROPPED.search(line) or (not gpu_machine and NO_GPU_DROPPED.search(line)))


@contextlib.contextmanager
def start_up_lines_dropped():
    """Collect what is written to file descriptor 2 inside, then write it back without the lines
    `dropped` names."""
    collected = None
    if sys.stderr is not None:  # (None: no stderr at all, as under pythonw)
        try:
            collected = tempfile.TemporaryFile()
        except OSError:  # no writable temporary directory: the lines stay
            pass
    if collected is None:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    with collected:
        os.dup2(collected.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(original, 2)
            os.close(original)
            collected.seek(0)
            gpu_machine = nvidia_driver_present()
            lines = collected.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not dropped(line, gpu_machine)))
            sys.stderr.flush()


# The packages whose modules are commands (`python -m alae_tf.train`, `python -m export`, ...).
COMMAND_PACKAGES = ("alae_tf", "export", "serving")


def started_as_command() -> bool:
    """Whether this Python was started as one of the project's commands, not as an app importing it."""
    args = iter(sys.orig_argv[1:])
    for arg in args:  # Python's own options, up to the module, script or -c
        if arg.startswith("-m"):
            module = arg[2:] or next(args, "")
            return module.partition(".")[0] in COMMAND_PACKAGES
        if arg in ("-W", "-X"):
            next(args, None)
        elif arg == "-" or not arg.startswith("-") or arg.startswith("-c"):
            return False
    return False


def quiet_ctrl_c_while_starting():
    """In the project's commands, a Ctrl-C before the command's own handling of it begins (in the
    seconds TensorFlow takes to import) prints one line, not a traceback through the imports.
    Python still ends the process by SIGINT, as a shell expects. Apps keep Python's behaviour."""
    if not started_as_command():
        return
    python_hook = sys.excepthook

    def hook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            sys.stderr.write("\ninterrupted (Ctrl-C) while starting: nothing was done\n")
        else:
            python_hook(kind, value, traceback)

    sys.excepthook = hook


class QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An import finder for `tensorflow` alone, once: it leaves the finding to Python's other
    finders and runs TensorFlow's module inside `start_up_lines_dropped`, where TensorFlow also
    looks for GPUs (CUDA's first probe logs)."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self.tensorflow_loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.tensorflow_loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.tensorflow_loader
        with start_up_lines_dropped():
            self.tensorflow_loader.exec_module(module)
            module.config.list_physical_devices("GPU")


def quiet_tensorflow_import():
    """Make the next first import of TensorFlow a quiet one (nothing to do if it was imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())
