"""What a run prints to the console: TensorFlow's C++ start-up notices belong in the log file."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Runs in a fresh interpreter: the notices are written once per process, at import and at the
# first operation, to file descriptor 2, where no Python-level capture reaches them.
_SCRIPT = textwrap.dedent(
    """
    import sys
    from dam_detection.hooks import _import_tensorflow_quietly

    with open(sys.argv[1], "w") as log:
        _import_tensorflow_quietly(log)
    import tensorflow as tf

    print(int(tf.constant(1) + 1))
    """
)


@pytest.mark.slow
def test_tensorflow_notices_go_to_the_log_not_the_console(tmp_path: Path):
    log = tmp_path / "run.log"
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(log)],
        capture_output=True, text=True, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "0"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2"
    # Nothing from TensorFlow's C++ side on the console, including the CUDA probe of the first
    # operation ("failed call to cuInit" on machines without a GPU) ...
    assert "I0000" not in result.stderr and "E0000" not in result.stderr, result.stderr
    assert "cuInit" not in result.stderr
    # ... and the notices are on record in the log.
    assert "absl::InitializeLog" in log.read_text()
