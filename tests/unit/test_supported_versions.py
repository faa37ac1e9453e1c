"""The installed distribution's metadata admits the Django and Python versions the README lists."""

from __future__ import annotations

from importlib.metadata import metadata, requires

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet


def _django_requirement() -> Requirement:
    [django] = [
        r for r in map(Requirement, requires("pgoutbox") or []) if r.name.lower() == "django"
    ]
    return django


@pytest.mark.parametrize("version", ["5.2", "5.2.19", "6.0", "6.0.10", "6.1", "6.1.3"])
def test_supported_django_versions_are_installable(version):
    assert _django_requirement().specifier.contains(version)


@pytest.mark.parametrize("version", ["5.1.15", "6.2", "7.0"])
def test_unsupported_django_versions_are_refused(version):
    assert not _django_requirement().specifier.contains(version)


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_supported_python_versions(version):
    assert SpecifierSet(metadata("pgoutbox")["Requires-Python"]).contains(version)
