"""Weights files are stored by content: renaming the file is not a change of weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.errors import IdenticalSpec
from charter.service.registry import Registry


def test_the_same_weights_under_another_file_name_are_the_same_spec(
    registry: Registry, tmp_path: Path
) -> None:
    first = tmp_path / "model-a.safetensors"
    first.write_bytes(b"\x01\x02" * 50_000)
    spec = {"family": "llama", "architecture": "decoder", "parameter_count": 1000}
    registry.models.register("m", {**spec, "weights": str(first)})
    renamed = tmp_path / "renamed.bin"
    renamed.write_bytes(first.read_bytes())
    with pytest.raises(IdenticalSpec):
        registry.models.register("m", {**spec, "weights": str(renamed)})
    changed = tmp_path / "changed.bin"
    changed.write_bytes(b"\x03" * 100_000)
    assert str(registry.models.register("m", {**spec, "weights": str(changed)}).version) == "1.1.0"
