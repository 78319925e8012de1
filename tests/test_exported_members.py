"""The public surface is exactly ``__all__``, and each name is defined where it says it is."""

import types

import importer


def test_all_names_exist_and_are_public() -> None:
    for name in importer.__all__:
        member = getattr(importer, name)
        if name == "__version__":
            continue
        assert member.__module__.startswith("importer."), name
        assert not name.startswith("_"), name


def test_public_members_are_exactly_all() -> None:
    public = {name for name, value in vars(importer).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(importer.__all__) - {"__version__"}
