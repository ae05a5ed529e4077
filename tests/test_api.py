"""The top-level Python API: `poselab.<name>` is the documented function or class, always."""

from __future__ import annotations

import importlib
import types

import poselab


def test_every_api_name_resolves_to_its_object_even_after_its_module_is_imported():
    # Importing a submodule sets it as an attribute of the package: a module named like its
    # function (poselab.train the module vs poselab.train the function) would shadow the
    # function after first use. Import every module first, then look the names up.
    for module in set(poselab._API.values()):
        importlib.import_module(module)
    for name in poselab.__all__:
        value = getattr(poselab, name)
        assert not isinstance(value, types.ModuleType), f"poselab.{name} is a module"
        assert value is getattr(importlib.import_module(poselab._API[name]), name)


def test_unknown_name_is_an_attribute_error():
    try:
        poselab.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
