"""The runnable examples in the module docstrings are correct."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["negrl.methods", "negrl.methods.batch", "negrl.methods.common", "negrl.methods.grpo",
           "negrl.methods.ntf", "negrl.methods.registry", "negrl.train.dynamic_sampling"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and (result.attempted > 0 or name == "negrl.methods")
