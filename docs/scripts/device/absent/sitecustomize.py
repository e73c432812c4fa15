"""Python loads this file at start-up when its folder is on PYTHONPATH: then the packages this project can import
that the device machine's image lacks (KINDS.md, 2026-12-03) and pack.sh does not carry fail to import, as they
would there. Used by dry_run.sh and tests/test_device_kit.py."""

import sys

ABSENT = {"albumentations", "albucore", "openvino", "pydantic", "psycopg"}


class Absent:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (absent on the device machine)", name=name)


sys.meta_path.insert(0, Absent())
