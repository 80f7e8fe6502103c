import pytest

from rewards.selectors import program_settings


@pytest.fixture
def program(db):
    """The program settings row, to tweak per test."""
    return program_settings()
