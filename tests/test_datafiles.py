"""Reading declarative YAML files: libyaml for speed, the same data, lines and messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fhirbridge import datafiles
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError, read_yaml

DATA_FILES = sorted(
    [*(PROJECT_ROOT / "mappings").rglob("*.yaml"), *(PROJECT_ROOT / "fhirbridge").rglob("*.yaml")]
)
BROKEN = PROJECT_ROOT / "fixtures" / "conformance" / "bad"


def _read_with(loader: type[yaml.SafeLoader], path: Path) -> datafiles.YamlDocument:
    previous = datafiles._FAST_LOADER
    datafiles._FAST_LOADER = loader
    try:
        return read_yaml(path)
    finally:
        datafiles._FAST_LOADER = previous


def test_the_fast_loader_is_libyaml_where_it_is_installed() -> None:
    assert datafiles._FAST_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_data_file_reads_to_the_same_data_and_lines_as_the_pure_python_loader(
    path: Path,
) -> None:
    fast = read_yaml(path)
    pure = _read_with(yaml.SafeLoader, path)

    assert (fast.data, dict(fast.lines)) == (pure.data, dict(pure.lines))


@pytest.mark.parametrize("name", ["not-yaml.yaml", "duplicate-key.yaml"])
def test_a_broken_file_is_reported_in_the_pure_python_loaders_words(name: str) -> None:
    with pytest.raises(DataFileError) as fast:
        read_yaml(BROKEN / name)
    with pytest.raises(DataFileError) as pure:
        _read_with(yaml.SafeLoader, BROKEN / name)

    assert (fast.value.line, fast.value.reason) == (pure.value.line, pure.value.reason)
