"""The public surface is exactly what ``__all__`` says, sorted, typed and documented."""

from __future__ import annotations

import inspect

import helpcrunch_async as hc


def test_all_is_sorted():
    """__all__ is sorted, so that a diff of it reads as a list of added and removed names."""
    assert sorted(hc.__all__) == hc.__all__


def test_public_names_show_their_public_path():
    """Tracebacks and reprs name `helpcrunch_async.X`, never the private module."""
    for name in hc.__all__:
        obj = getattr(hc, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert "helpcrunch_async" == obj.__module__, name


def test_version_is_a_string():
    """`__version__` is there without importing the package from inside itself."""
    from helpcrunch_async.__version__ import __version__  # noqa: PLC0415

    assert __version__ == hc.__version__


def test_exported_members_match_all():
    """Every public attribute of the package is in __all__ and vice versa."""
    public = {
        name
        for name, value in vars(hc).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(hc.__all__) == public


def test_every_public_name_is_documented():
    """Each public class has a docstring, and so do its public methods."""
    for name in hc.__all__:
        obj = getattr(hc, name)
        assert inspect.getdoc(obj), name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and inspect.isfunction(member):
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_package_is_typed():
    """py.typed ships with the package."""
    from importlib.resources import files  # noqa: PLC0415

    assert files("helpcrunch_async").joinpath("py.typed").is_file()
