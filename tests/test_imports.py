import pytest

from brainalign._imports import soft_import


def test_soft_import_ok_and_hint():
    assert soft_import("json", "test", "x").dumps([1]) == "[1]"
    with pytest.raises(
        ImportError,
        match=r"my_feature needs the optional package "
        r"'not_a_module_xyz'.*pip install 'brainalign\[models\]'",
    ):
        soft_import("not_a_module_xyz", "models", "my_feature")
