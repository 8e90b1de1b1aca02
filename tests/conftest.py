"""Fixtures shared by the tests; the helpers themselves live in tests/common."""

import pytest

from tests.common import synthetic_data

# The longest tests first: `make test` runs them on two workers (pytest-xdist), the pipeline's grouped
# by the clone they build on (--dist loadgroup), and the rest fill in around them.
FIRST = ("tests/test_pipeline.py",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(FIRST))  # stable: the rest keep their order


@pytest.fixture
def tiny_data():
    return synthetic_data()
