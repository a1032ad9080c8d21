"""Test-session settings shared by ``tests/`` and the tests beside the code."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    # The tests solve many small (about 100 x 100) systems, for which BLAS threads only add
    # synchronization, and a lot of it when the machine is busy. Results do not depend on it.
    with threadpool_limits(1):
        yield
