"""TensorFlow's start-up lines are dropped at `import alae_tf`; everything else on stderr stays."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alae_tf import tensorflow_start

REPO = Path(__file__).resolve().parents[1]
# As TensorFlow 2.21 wrote them on a 2-core AMD EPYC without a GPU (2026-12-03), with one line of our own between.
START_UP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796310444.817637   21249 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.\n"
    "I0000 00:00:1796310444.818187   21249 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
    "a line of someone else\n"
    "I0000 00:00:1796310444.967829   21249 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n"
    "E0000 00:00:1796310452.074697   21249 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


WRITE_INSIDE = """
import os, sys
from alae_tf import tensorflow_start
tensorflow_start.nvidia_driver_present = lambda: sys.argv[1] == "gpu"
with tensorflow_start.start_up_lines_dropped():
    os.write(2, sys.stdin.read().encode())
    print("from Python", file=sys.stderr)
print("stdout untouched")
"""


@pytest.mark.parametrize("machine", ["cpu", "gpu"], ids=["no NVIDIA driver", "NVIDIA driver"])
def test_only_the_start_up_lines_are_dropped(machine):
    result = subprocess.run([sys.executable, "-c", WRITE_INSIDE, machine], input=START_UP, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    kept = [line for line in START_UP.splitlines()
            if line == "a line of someone else" or (machine == "gpu" and "cuda" in line.lower())]
    expected = [*kept, "from Python"]
    assert result.returncode == 0 and result.stdout == "stdout untouched\n"
    assert result.stderr.splitlines() == expected


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="a GPU machine keeps TensorFlow's CUDA lines")
def test_importing_alae_tf_and_compiling_print_nothing_on_a_cpu_machine():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    # An XLA-compiled function: TensorFlow logs its XLA service start at INFO level (hidden by alae_tf's default).
    code = "import alae_tf, tensorflow as tf; tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))"
    result = subprocess.run([sys.executable, "-c", code],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
