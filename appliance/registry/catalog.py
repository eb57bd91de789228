"""The catalog: every repository with at least one manifest folder, in lexical order."""

from __future__ import annotations

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver


class Catalog:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def repositories(self) -> list[str]:
        found: list[str] = []
        self._collect(paths.REPOSITORIES, "", found)
        return sorted(found)

    def _collect(self, path: str, prefix: str, found: list[str]) -> None:
        try:
            children = self.driver.list(path)
        except PathNotFound:
            return
        names = [child.rsplit("/", 1)[1] for child in children]
        if "_manifests" in names:
            found.append(prefix.rstrip("/"))
        for child, name in zip(children, names, strict=True):
            if not name.startswith("_") and self.driver.stat(child).is_dir:
                self._collect(child, f"{prefix}{name}/", found)
