"""Test-session settings shared by ``tests/`` and the tests beside the code."""

import os

import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# Property tests explore a fixed, reproducible sequence of examples (the same on every run
# and every machine, so that CI cannot turn red by chance), without wall-clock deadlines
# (a busy machine is not a failing property). Set HYPOTHESIS_PROFILE=explore to draw fresh
# examples on each run.
settings.register_profile(
    "sklearn_ssse",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", parent=settings.get_profile("sklearn_ssse"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sklearn_ssse"))


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    # The tests solve many small (about 100 x 100) systems, for which BLAS threads only add
    # synchronization, and a lot of it when the machine is busy. Results do not depend on it.
    with threadpool_limits(1):
        yield
