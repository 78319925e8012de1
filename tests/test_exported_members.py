"""The public surface is exactly ``__all__``, and each name is defined where it says it is."""

import subprocess
import sys
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
    public = {name for name in dir(importer) if not name.startswith("_")
              and not isinstance(getattr(importer, name), types.ModuleType)}
    assert public == set(importer.__all__) - {"__version__"}


def test_importing_the_package_is_light() -> None:
    """The console script imports ``importer`` before it can watch signals: keep that cheap."""
    code = ("import sys, importer._entry; heavy = {'numpy', 'requests', 'openpyxl', "
            "'python_calamine'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

