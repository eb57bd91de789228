"""`storage.swift`: Distribution 2.8's keys and checks, env overrides, redaction, wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from appliance.config import ConfigError, DefaultPaths, load, redacted_yaml
from appliance.server import describe_storage, open_driver
from appliance.storage.swift import SwiftDriver

PATHS = DefaultPaths("/data", "/certs", "/nonexistent/htpasswd", "/run/admin.sock")
SWIFT = """\
version: 0.1
storage:
  swift:
    authurl: https://keystone.example.com/v3
    username: registry
    password: s3cr3t-pw
    container: images
"""


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "config.yml"
    path.write_text(text)
    return load(str(path), environ or {}, paths=PATHS)


def test_minimal_swift_section_gets_distributions_defaults(tmp_path: Path) -> None:
    """The four required keys are enough; the rest default as in Distribution (20 MiB chunks,
    public endpoint, auth version from the URL, no prefix)."""
    config = _load(tmp_path, SWIFT)
    swift = config.storage.swift
    assert config.storage.driver == "swift" and swift is not None
    assert (swift.authurl, swift.username, swift.password, swift.container) == (
        "https://keystone.example.com/v3", "registry", "s3cr3t-pw", "images")
    assert (swift.chunksize, swift.endpointtype, swift.authversion, swift.prefix) == (20 << 20, "public", 0, "")
    assert config.ignored == ()


def test_every_distribution_key_is_read(tmp_path: Path) -> None:
    """All of Distribution 2.8's swift keys are understood; none ends up in `ignored`."""
    text = SWIFT + """\
    authversion: 3
    tenant: project
    tenantid: p-1
    domain: users
    domainid: d-1
    tenantdomain: projects
    tenantdomainid: d-2
    trustid: trust-1
    region: RegionOne
    endpointtype: internal
    insecureskipverify: true
    chunksize: 5242880
    prefix: /registry
    secretkey: temp-url-key
    accesskey: hp-access
    tempurlcontainerkey: true
    tempurlmethods: [GET, head]
"""
    config = _load(tmp_path, text)
    swift = config.storage.swift
    assert swift is not None and config.ignored == ()
    assert (swift.authversion, swift.tenant, swift.tenantid, swift.domain, swift.domainid) == (
        3, "project", "p-1", "users", "d-1")
    assert (swift.tenantdomain, swift.tenantdomainid, swift.trustid, swift.region) == (
        "projects", "d-2", "trust-1", "RegionOne")
    assert (swift.endpointtype, swift.insecureskipverify, swift.chunksize, swift.prefix) == (
        "internal", True, 5 << 20, "/registry")
    assert (swift.secretkey, swift.accesskey, swift.tempurlcontainerkey, swift.tempurlmethods) == (
        "temp-url-key", "hp-access", True, ("GET", "HEAD"))
    assert config.storage.rootdirectory == "/registry"


def test_problems_name_their_keys(tmp_path: Path) -> None:
    """Missing required keys and bad values are all reported at once, each by its key."""
    text = """\
version: 0.1
storage:
  swift:
    authurl: keystone.example.com
    container: a/b
    chunksize: 1000
    authversion: 4
    endpointtype: private
    tempurlmethods: [GET, FETCH]
"""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    problems = "\n".join(caught.value.problems)
    for key in ("authurl: must be a URL", "username: required", "password: required",
                "container: must be a Swift container name", "chunksize: must be at least 1048576",
                "authversion: must be 1, 2 or 3", "endpointtype: must be one of",
                "tempurlmethods: unknown method FETCH"):
        assert f"storage.swift.{key}" in problems, problems


def test_env_overrides_reach_the_swift_section(tmp_path: Path) -> None:
    """REGISTRY_STORAGE_SWIFT_* set or replace keys, as in Distribution."""
    config = _load(tmp_path, SWIFT, {"REGISTRY_STORAGE_SWIFT_PASSWORD": "from-env",
                                     "REGISTRY_STORAGE_SWIFT_CHUNKSIZE": "2097152"})
    assert config.storage.swift is not None
    assert (config.storage.swift.password, config.storage.swift.chunksize) == ("from-env", 2 << 20)


def test_secrets_are_redacted(tmp_path: Path) -> None:
    """password, secretkey and accesskey never show in `config check` output or logs."""
    config = _load(tmp_path, SWIFT + "    secretkey: temp-url-key\n    accesskey: hp-access\n"
                                     "    tempurlmethods: GET\n")
    text = redacted_yaml(config)
    for secret in ("s3cr3t-pw", "temp-url-key", "hp-access"):
        assert secret not in text
    section = yaml.safe_load(text)["storage"]["swift"]
    assert section["password"] == section["secretkey"] == section["accesskey"] == "<redacted>"
    assert section["username"] == "registry" and section["tempurlmethods"] == ["GET"]


def test_the_server_opens_a_swift_driver(tmp_path: Path) -> None:
    """open_driver builds the Swift driver from the section without touching the network."""
    config = _load(tmp_path, SWIFT + "    prefix: /reg\n    chunksize: 2MiB\n")
    driver = open_driver(config)
    assert isinstance(driver, SwiftDriver)
    assert (driver.container, driver.options.chunksize, driver.options.prefix) == ("images", 2 << 20, "/reg")
    assert driver.appends is False and driver.free_bytes() is None
    assert describe_storage(config) == "swift://images/reg"
