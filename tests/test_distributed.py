"""Distributed training: every replica (and every worker) uses the same rate
and momentum at every update, equal to a single-device run of the same global
batch, and the weights agree with it. Each run is a process of its own
(`distributed_runs.py`), since the devices are set up before the backend
starts."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

RUNS = Path(__file__).parent / "distributed_runs.py"


def run(mode, env=None, timeout=300):
    out = subprocess.run(
        [sys.executable, str(RUNS), mode],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_same_training(distributed, single):
    assert len(single["rates"]) == 16
    assert distributed["rates"] == single["rates"]
    assert distributed["momentums"] == single["momentums"]
    for got, want in zip(distributed["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_comparison_catches_another_rate_momentum_or_weight():
    """What the distributed runs are held to: the same rate and momentum at
    every update, exactly, and weights equal but for float32 summation order
    (the replicas' gradients are summed in another order than one batch's)."""
    single = {
        "rates": [0.01 + 0.001 * k for k in range(16)],
        "momentums": [0.9] * 16,
        "weights": [[[0.5, -0.25]], [0.125]],
    }
    assert_same_training(json.loads(json.dumps(single)), single)
    changes = (
        lambda run: run["rates"].__setitem__(7, run["rates"][7] * 1.0001),
        lambda run: run["momentums"].__setitem__(15, 0.95),
        lambda run: run["weights"][1].__setitem__(0, 0.125 + 1e-4),
    )
    for change in changes:
        other = json.loads(json.dumps(single))
        change(other)
        with pytest.raises(AssertionError):
            assert_same_training(other, single)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow strategy")
def test_mirrored_strategy_over_two_devices():
    result = run("mirrored")
    distributed = result["distributed"]
    assert distributed["replicas"] == 2 and distributed["copies"] == 2
    assert distributed["copies_equal"]
    assert_same_training(distributed, result["single"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow strategy")
def test_multi_worker_mirrored_strategy_with_two_workers():
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
    workers = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                [sys.executable, str(RUNS), "worker"],
                env={**os.environ, "TF_CONFIG": json.dumps(config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    results = []
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    single = run("worker")
    for result in results:
        assert_same_training(result, single)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="Keras's JAX distribution API")
def test_jax_data_parallel_over_two_devices():
    result = run("data_parallel")
    distributed = result["distributed"]
    assert distributed["devices"] == 2 and distributed["kernel_devices"] == 2
    assert_same_training(distributed, result["single"])
