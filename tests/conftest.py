"""Fixtures shared by the tests; the helpers themselves live in tests/common."""

import pytest

from tests.common import synthetic_data


@pytest.fixture
def tiny_data():
    return synthetic_data()
