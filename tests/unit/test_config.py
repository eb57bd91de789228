"""Reading Distribution's config.yml, env overrides, validation and redaction."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import (
    Config,
    ConfigError,
    DefaultPaths,
    HtpasswdConfig,
    TLSConfig,
    default_paths,
    load,
    redacted_yaml,
)

PATHS = DefaultPaths("/data", "/certs", "/nonexistent/htpasswd", "/run/admin.sock")
MINIMAL = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n"
WITH_AGE = MINIMAL + "  maintenance:\n    uploadpurging:\n      age: "

# The sample from Distribution's docs (docs/content/about/deploying.md, config-example.yml).
DISTRIBUTION_SAMPLE = """
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(text))
    return load(str(path), environ or {}, paths=PATHS)


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, environ)
    return list(info.value.problems)


def test_distribution_sample_loads(tmp_path: Path) -> None:
    """Distribution's sample config loads, its blob descriptor cache included."""
    config = load_text(tmp_path, DISTRIBUTION_SAMPLE)
    assert config.version == "0.1"
    assert dict(config.log.fields) == {"service": "registry"}
    assert (config.storage.driver, config.storage.rootdirectory) == ("filesystem",
                                                                     "/var/lib/registry")
    assert config.http.addr == ":5000"
    assert dict(config.http.headers) == {"X-Content-Type-Options": ("nosniff",)}
    assert config.http.tls is None
    assert config.ignored == ()
    assert config.storage.blobdescriptor == "inmemory"
    assert (config.health.storagedriver_enabled, config.health.storagedriver_interval,
            config.health.storagedriver_threshold) == (True, 10.0, 3)
    assert config.source == str(tmp_path / "config.yml")


def test_distribution_defaults(tmp_path: Path) -> None:
    """A minimal file gets Distribution's defaults and no appliance certificate generation."""
    config = load_text(tmp_path, "version: 0.1\nstorage:\n  filesystem:\n")
    assert config.storage.rootdirectory == "/var/lib/registry"
    assert not config.storage.delete_enabled and not config.storage.readonly
    assert (config.storage.uploadpurging.age, config.storage.uploadpurging.interval) == (
        168 * 3600, 24 * 3600)
    assert config.http.addr == ":5000" and config.http.net == "tcp"
    assert dict(config.http.headers) == {"X-Content-Type-Options": ("nosniff",)}
    assert (config.log.level, config.log.formatter) == ("info", "text")
    assert config.appliance.certs_dir == "/certs" and not config.appliance.autogenerate_certs
    assert config.appliance.max_manifest_bytes == 4 * 1024 * 1024
    assert config.auth.htpasswd is None and config.ignored == ()


def test_full_config(tmp_path: Path) -> None:
    """Every implemented key is read, with Go-style booleans, aliases and sizes."""
    config = load_text(tmp_path, """
        version: "0.1"
        log: {level: WARNING, formatter: logstash}
        storage:
          filesystem: {rootdirectory: /srv, maxthreads: 200}
          delete: {enabled: yes}
          maintenance:
            uploadpurging: {enabled: false, age: 1h30m, interval: 10s, dryrun: on}
            readonly: {enabled: "true"}
        http:
          addr: 127.0.0.1:5443
          host: https://registry.example.com
          relativeurls: true
          headers: {X-Frame-Options: DENY}
          tls: {certificate: /c.pem, key: /k.pem, clientcas: /ca.pem, minimumtls: tls1.3}
        auth:
          htpasswd: {realm: Registry Realm, path: /auth/htpasswd}
        appliance:
          certs: {dir: /etc/certs, autogenerate: true}
          limits: {maxbodysize: 10GiB, maxmanifestsize: 512KiB}
    """)
    assert (config.log.level, config.log.formatter) == ("warn", "json")
    storage = config.storage
    assert (storage.rootdirectory, storage.maxthreads) == ("/srv", 200)
    assert storage.delete_enabled and storage.readonly
    assert storage.uploadpurging.age == 5400 and storage.uploadpurging.interval == 10
    assert not storage.uploadpurging.enabled and storage.uploadpurging.dryrun
    assert config.http.relativeurls and config.http.host == "https://registry.example.com"
    assert dict(config.http.headers) == {"X-Frame-Options": ("DENY",)}
    assert config.http.tls == TLSConfig("/c.pem", "/k.pem", ("/ca.pem",), "tls1.3")
    assert config.auth.htpasswd == HtpasswdConfig("Registry Realm", "/auth/htpasswd")
    assert config.appliance.max_body_bytes == 10 * 1024**3
    assert config.appliance.max_manifest_bytes == 512 * 1024
    assert config.appliance.autogenerate_certs and config.ignored == ()


def test_explicit_tags_are_read_as_text(tmp_path: Path) -> None:
    """Explicit YAML tags do not change how a key is read: the text is parsed by the field."""
    config = load_text(tmp_path, MINIMAL.replace("0.1", "!!float 0.1")
                       + "  delete: {enabled: !!bool true}\n"
                       + "  maintenance: {uploadpurging: {age: !!int 60}}\n")
    assert config.version == "0.1" and config.storage.delete_enabled
    assert config.storage.uploadpurging.age == 60


@pytest.mark.parametrize(("text", "seconds"), [
    ("168h", 604800), ("1h30m", 5400), ("10s", 10), ("500ms", 0.5), ("1.5h", 5400),
    ("3600", 3600), ("2m0.5s", 120.5),
])
def test_durations(tmp_path: Path, text: str, seconds: float) -> None:
    """Go duration strings and plain numbers of seconds are accepted."""
    config = load_text(tmp_path, f"{WITH_AGE}{text}\n")
    assert config.storage.uploadpurging.age == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "10 parsecs", "-1h", "h", "1h-5m", "0", "[1h]", "9" * 400 + "h", "9" * 400,
])
def test_bad_durations_name_the_key(tmp_path: Path, text: str) -> None:
    """A bad or zero duration is a problem naming storage.maintenance.uploadpurging.age."""
    found = problems(tmp_path, f"{WITH_AGE}{text}\n")
    assert len(found) == 1
    assert found[0].startswith("storage.maintenance.uploadpurging.age: must be ")


@pytest.mark.parametrize(("text", "size"), [
    ("1048576", 1 << 20), ("512MiB", 512 << 20), ("10GiB", 10 << 30), ("2GB", 2 * 10**9),
    ("1 KiB", 1024), ("100b", 100), ("1.5KiB", 1536), ("9" * 400, int("9" * 400)),
])
def test_sizes(tmp_path: Path, text: str, size: int) -> None:
    """Sizes are bytes or a number with a decimal or binary unit."""
    config = load_text(tmp_path, MINIMAL + f"appliance:\n  limits:\n    maxbodysize: {text}\n")
    assert config.appliance.max_body_bytes == size


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 0.1\nstorage: {filesystem: {rootdirectory: [a, b]}}",
     "storage.filesystem.rootdirectory: must be a string"),
    (MINIMAL + "http: {tls: {certificate: c, key: k, minimumtls: tls9}}",
     "http.tls.minimumtls: must be one of tls1.2, tls1.3"),
    (MINIMAL + "http: {tls: {certificate: c, key: k, minimumtls: tls1.0}}",
     "http.tls.minimumtls: tls1.0 is refused: it is broken; use tls1.2 or tls1.3"),
    (MINIMAL + "http: {tls: {certificate: c}}", "http.tls.key: required"),
    ("storage: {filesystem: {}}", "version: required"),
    ("version: 2\nstorage: {filesystem: {}}", "version: must be 0.1"),
    ("version: 0.1", "storage: required"),
    ("version: 0.1\nstorage: [filesystem]", "storage: must be a map"),
    ("version: 0.1\nstorage: {delete: {enabled: true}}",
     "storage: a driver is required, such as filesystem"),
    ("version: 0.1\nstorage: {s3: {bucket: b}}", "storage.s3.region: required"),
    ("version: 0.1\nstorage: {s3: {bucket: b, region: r, chunksize: 1000}}",
     "storage.s3.chunksize: must be at least 5242880"),
    ("version: 0.1\nstorage: {oss: {bucket: b, region: r, accesskeyid: a}}",
     "storage.oss.accesskeysecret: required"),
    ("version: 0.1\nstorage: {filesystem: {}, cache: {blobdescriptor: redis}}",
     "storage.cache.blobdescriptor: must be inmemory (redis is not supported)"),
    ("version: 0.1\nstorage: {floppy: {}}",
     "storage.floppy: unknown storage driver (known: filesystem, s3, oss, swift, inmemory)"),
    ("version: 0.1\nstorage: {filesystem: {}, inmemory: {}}",
     "storage: only one driver may be configured, got filesystem, inmemory"),
    (MINIMAL + "  delete: {enabled: maybe}", "storage.delete.enabled: must be true or false"),
    (MINIMAL + "  filesystem: {maxthreads: many}",
     "storage.filesystem.maxthreads: must be a whole number"),
    (MINIMAL + "log: {level: loud}",
     "log.level: must be one of debug, info, warn, warning, error"),
    (MINIMAL + "log: {fields: {a: {b: c}}}", "log.fields.a: must be a string"),
    (MINIMAL + "http: {headers: [X-A]}", "http.headers: must be a map"),
    (MINIMAL + "http: {headers: {X-A: [{b: c}]}}",
     "http.headers.X-A: must be a string or a list of strings"),
    (MINIMAL + "http: {addr: localhost}",
     "http.addr: must be host:port, like :5000 or 127.0.0.1:5000"),
    (MINIMAL + "http: {net: udp}", "http.net: must be one of tcp, unix"),
    (MINIMAL + "http: {host: registry.example.com}",
     "http.host: must be a URL like https://registry.example.com:5000"),
    (MINIMAL + "http: {host: 'http://[::1'}",
     "http.host: must be a URL like https://registry.example.com:5000"),
    (MINIMAL + "auth: {htpasswd: {path: /p}}", "auth.htpasswd.realm: required"),
    (MINIMAL + "auth: {htpasswd: {realm: r, path: /p}, token: {realm: r}}",
     "auth: only one auth method may be configured, got htpasswd, token"),
    (MINIMAL + "appliance: {limits: {maxbodysise: 1GiB}}",
     "appliance.limits.maxbodysise: unknown key"),
    (MINIMAL + "appliance: {limits: {maxbodysize: lots}}",
     "appliance.limits.maxbodysize: must be a size like 512MiB, 10GiB or a number of bytes"),
])
def test_problems_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of bad input gives one problem that starts with its dotted key."""
    assert problems(tmp_path, text) == [expected]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    """Every problem in the file is reported together, not just the first."""
    found = problems(tmp_path, "log: {level: loud}\nstorage: {s3: {}}\nappliance: {x: 1}\n")
    assert found == ["version: required", "log.level: must be one of debug, info, warn, warning, "
                     "error", "storage.s3.bucket: required", "storage.s3.region: required",
                     "appliance.x: unknown key"]


def test_unparseable_and_missing_files(tmp_path: Path) -> None:
    """Bad YAML, a non-map document and a missing file each give one problem naming the file."""
    path = tmp_path / "config.yml"
    for text, expected in [("version: [0.1\n", "not valid YAML: line 2 column 1: expected ',' or"),
                           ("- a\n- b\n", "must be a map of sections"),
                           ("a: " + "[" * 100000, "not valid YAML: nested too deeply"),
                           ("a: !custom x", "not valid YAML: line 1 column 4: could not determine"),
                           (b"version: \xff\xfe", "not valid YAML: ")]:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ConfigError) as info:
            load(str(path), {}, paths=PATHS)
        assert info.value.problems[0].startswith(f"{path}: {expected}")
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path / "absent.yml"), {}, paths=PATHS)
    assert info.value.problems == (f"{tmp_path / 'absent.yml'}: cannot read: No such file or "
                                   "directory",)


def test_env_overrides(tmp_path: Path) -> None:
    """REGISTRY_* variables override nested keys; values are YAML; the config path is not one."""
    config = load_text(tmp_path, MINIMAL, {
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/x",
        "REGISTRY_HTTP_ADDR": "0.0.0.0:6000",
        "REGISTRY_LOG_LEVEL": "debug",
        "REGISTRY_LOG_FIELDS": "{environment: staging}",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_AUTH_HTPASSWD_REALM": "basic",
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
        "REGISTRY_CONFIGURATION_PATH": str(tmp_path / "other.yml"),
        "OTHER_HTTP_ADDR": ":1",
    })
    assert config.storage.rootdirectory == "/x" and config.storage.delete_enabled
    assert config.http.addr == "0.0.0.0:6000" and config.log.level == "debug"
    assert dict(config.log.fields) == {"environment": "staging"}
    assert config.auth.htpasswd == HtpasswdConfig("basic", "/auth/htpasswd")
    assert config.ignored == ()


def test_env_matches_existing_keys_case_insensitively(tmp_path: Path) -> None:
    """An override replaces an existing key whatever its case, rather than adding a twin."""
    config = load_text(tmp_path, MINIMAL + "log: {fields: {Service: registry}}",
                       {"REGISTRY_LOG_FIELDS_SERVICE": "mirror"})
    assert dict(config.log.fields) == {"Service": "mirror"}


def test_env_selects_storage_driver(tmp_path: Path) -> None:
    """REGISTRY_STORAGE=inmemory swaps the driver and keeps driver-independent settings."""
    config = load_text(tmp_path, MINIMAL + "  delete: {enabled: true}",
                       {"REGISTRY_STORAGE": "inmemory"})
    assert config.storage.driver == "inmemory" and config.storage.delete_enabled


def test_storage_named_by_string(tmp_path: Path) -> None:
    """`storage: filesystem` names the driver, and env overrides can then fill it in."""
    config = load_text(tmp_path, "version: 0.1\nstorage: filesystem\n",
                       {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/y"})
    assert (config.storage.driver, config.storage.rootdirectory) == ("filesystem", "/y")


def test_env_into_a_scalar_is_ignored(tmp_path: Path) -> None:
    """Kubernetes' REGISTRY_PORT_* service variables are reported as ignored, not fatal."""
    config = load_text(tmp_path, MINIMAL, {"REGISTRY_PORT": "tcp://10.0.0.1:5000",
                                           "REGISTRY_PORT_5000_TCP": "tcp://10.0.0.1:5000",
                                           "REGISTRY__HTTP": "x"})
    assert config.ignored == ("REGISTRY_PORT_5000_TCP", "REGISTRY__HTTP", "port")


def test_env_problems(tmp_path: Path) -> None:
    """Bad env values are problems naming the variable or the key they set."""
    found = problems(tmp_path, MINIMAL, {"REGISTRY_HTTP_SECRET": "[unclosed",
                                         "REGISTRY_HTTP_TLS_MINIMUMTLS": "tls1.1",
                                         "REGISTRY_HTTP_TLS_CERTIFICATE": "/c"})
    assert found[0].startswith("REGISTRY_HTTP_SECRET: not valid YAML: ")
    assert found[1:] == ["http.tls.minimumtls: tls1.1 is refused: it is broken; use tls1.2 or "
                         "tls1.3", "http.tls.key: required"]


def test_ignored_keys_are_reported(tmp_path: Path) -> None:
    """Keys we do not implement, known to Distribution or not, are listed, outermost first."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
          redirect: {disable: true}
        http:
          prefix: /registry
          debug: {addr: ":5001", pprof: {enabled: true}}
          tls: {certificate: /c, key: /k, letsencrypt: {email: a@b.c}}
        notifications: {endpoints: []}
        redis: {addr: localhost:6379, password: hunter2}
        proxy: {remoteurl: https://registry-1.docker.io, nonsense: 2}
        nonsense: 1
    """))
    assert config.ignored == ("http.prefix", "http.debug.pprof",
                              "http.tls.letsencrypt", "redis", "proxy.nonsense", "nonsense")


def test_low_maxthreads_is_raised_with_a_warning(tmp_path: Path) -> None:
    """storage.filesystem.maxthreads below 25 becomes 25, as in Distribution, and says so."""
    config = load_text(tmp_path, MINIMAL + "    maxthreads: 4\n")
    assert config.storage.maxthreads == 25
    assert config.warnings == ("storage.filesystem.maxthreads: 4 is below 25; using 25, "
                               "as Distribution does",)


def test_redacted_yaml_hides_secrets_and_round_trips(tmp_path: Path) -> None:
    """http.secret is redacted, and the output loads back into the same config."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        http: {secret: hunter2, tls: {certificate: /c, key: /k}}
        auth: {htpasswd: {realm: r, path: /p}}
        appliance: {limits: {maxbodysize: 1GiB}}
    """))
    text = redacted_yaml(config)
    assert "hunter2" not in text
    assert yaml.safe_load(text)["http"]["secret"] == "<redacted>"
    assert yaml.safe_load(text)["http"]["tls"]["key"] == "/k"
    again = load_text(tmp_path, text)
    assert again.http.secret == "<redacted>"
    assert again.storage == config.storage and again.appliance == config.appliance
    assert (again.http.tls, again.auth, again.log) == (config.http.tls, config.auth, config.log)


def test_embedded_defaults_without_users(tmp_path: Path) -> None:
    """With no file, the appliance runs filesystem storage, deletes, TLS and no auth, and warns."""
    paths = default_paths({"HOME": str(tmp_path)}, euid=1000)
    config = load(None, {}, paths=paths)
    assert config.source == "embedded defaults"
    assert config.storage.rootdirectory == str(tmp_path / ".local/share/registry-appliance")
    assert config.storage.delete_enabled and config.appliance.autogenerate_certs
    certs = tmp_path / ".config/registry-appliance/certs"
    assert config.http.tls == TLSConfig(str(certs / "server.crt"), str(certs / "server.key"))
    assert config.auth.htpasswd is None
    assert len(config.warnings) == 1 and config.warnings[0].startswith("auth is off: ")


def test_embedded_defaults_with_users(tmp_path: Path) -> None:
    """Once the htpasswd file exists, embedded defaults turn htpasswd auth on."""
    paths = default_paths({"HOME": str(tmp_path)}, euid=1000)
    Path(paths.htpasswd_path).parent.mkdir(parents=True)
    Path(paths.htpasswd_path).write_text("alice:$2y$05$hash\n")
    config = load(None, {}, paths=paths)
    assert config.auth.htpasswd == HtpasswdConfig("registry-appliance", paths.htpasswd_path)
    assert config.warnings == ()


def test_env_overrides_embedded_defaults(tmp_path: Path) -> None:
    """Env overrides apply to the embedded defaults too."""
    environ = {"REGISTRY_HTTP_ADDR": ":443", "REGISTRY_STORAGE": "inmemory"}
    config = load(None, environ, paths=default_paths({"HOME": str(tmp_path)}, euid=1000))
    assert config.http.addr == ":443" and config.storage.driver == "inmemory"
    assert config.storage.delete_enabled


def test_default_paths() -> None:
    """Root gets system paths; users get XDG paths, honouring only absolute XDG variables."""
    assert default_paths({}, euid=0) == DefaultPaths(
        "/var/lib/registry", "/etc/registry-appliance/certs", "/etc/registry-appliance/htpasswd",
        "/run/registry-appliance/admin.sock")
    assert default_paths({"HOME": "/home/u", "XDG_DATA_HOME": "relative"}, euid=1000) == (
        DefaultPaths("/home/u/.local/share/registry-appliance",
                     "/home/u/.config/registry-appliance/certs",
                     "/home/u/.config/registry-appliance/htpasswd",
                     "/home/u/.cache/registry-appliance/admin.sock"))
    assert default_paths({"HOME": "/home/u", "XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/c",
                          "XDG_RUNTIME_DIR": "/run/user/1000"}, euid=1000) == DefaultPaths(
        "/d/registry-appliance", "/c/registry-appliance/certs", "/c/registry-appliance/htpasswd",
        "/run/user/1000/registry-appliance/admin.sock")


_KEYS = st.sampled_from(["version", "log", "level", "fields", "storage", "filesystem", "s3",
                         "rootdirectory", "maxthreads", "delete", "enabled", "maintenance",
                         "uploadpurging", "age", "readonly", "http", "addr", "net", "host",
                         "headers", "tls", "certificate", "key", "clientcas", "minimumtls",
                         "auth", "htpasswd", "realm", "path", "appliance", "certs", "limits",
                         "maxbodysize", "dir", "autogenerate"])
_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None,  # a loaded 2-core CI machine passes 200 ms
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_KEYS, _TREES, max_size=6),
       environ=st.dictionaries(st.from_regex(r"REGISTRY_[A-Z_]{0,20}", fullmatch=True),
                               st.text(max_size=8), max_size=3))
def test_no_traceback_for_any_input(tmp_path: Path, tree: dict, environ: dict) -> None:
    """Whatever the file and environment hold, load returns a Config or raises ConfigError."""
    try:
        config = load_text(tmp_path, yaml.safe_dump(tree), environ)
    except ConfigError as error:
        assert error.problems
    else:
        redacted_yaml(config)
