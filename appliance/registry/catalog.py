"""Find repositories: folders under `repositories/` that hold a given `_` folder."""

from __future__ import annotations

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver


def repositories_holding(driver: StorageDriver, marker: str) -> list[str]:
    """Names of repositories with a `marker` child (`_manifests`, `_layers`, `_uploads`), sorted.

    Name components never start with `_`, so those folders are never mistaken for nested
    repositories and are not descended into.
    """
    found: list[str] = []

    def visit(path: str, prefix: str) -> None:
        try:
            children = driver.list(path)
        except PathNotFound:
            return
        names = [child.rsplit("/", 1)[1] for child in children]
        if marker in names:
            found.append(prefix.rstrip("/"))
        for child, name in zip(children, names, strict=True):
            if not name.startswith("_") and not name.startswith("."):
                visit(child, f"{prefix}{name}/")

    visit(paths.REPOSITORIES, "")
    return sorted(found)


class Catalog:
    """The catalog: every repository with a manifests folder, in lexical order."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def repositories(self) -> list[str]:
        return repositories_holding(self.driver, "_manifests")
