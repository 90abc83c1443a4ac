"""tests/ mirrors portal/: the tests of portal/<package> live in tests/<package>, so a
newcomer finds them where the code is. Only the suites that cut across every package
have folders of their own."""
from pathlib import Path

CROSS_CUTTING = {"browser": "journeys through the pages in Chromium", "isolation": "cross-tenant isolation"}


def test_every_test_folder_names_a_portal_package():
    root = Path(__file__).resolve().parent
    packages = {p.name for p in (root.parent / "portal").iterdir() if (p / "__init__.py").exists()}
    folders = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - packages - set(CROSS_CUTTING) == set()
