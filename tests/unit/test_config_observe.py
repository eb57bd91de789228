"""Config for notifications, health and http.debug: Distribution's keys, typed, errors by key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError, DefaultPaths, load, redacted_yaml
from appliance.config.model import EVENTS_V1, EVENTS_V2, HealthCheckConfig

PATHS = DefaultPaths("/data", "/certs", "/nonexistent/htpasswd", "/run/admin.sock")
MINIMAL = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n"

FULL = MINIMAL + """\
http:
  addr: :5000
  debug:
    addr: 127.0.0.1:5001
    prometheus: {enabled: true, path: /prom}
notifications:
  events: {includereferences: true}
  endpoints:
    - name: gitlab
      url: https://gitlab.example.com/api/v4/container_registry_event/events
      headers: {Authorization: [Bearer s3cret]}
      timeout: 500ms
      threshold: 5
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        mediatypes: [application/vnd.oci.image.config.v1+json]
        actions: [pull]
    - name: off
      url: http://127.0.0.1:1/
      disabled: true
health:
  storagedriver: {enabled: true, interval: 10s, threshold: 3}
  file: [{file: /etc/registry-down, interval: 5s}]
  http:
    - uri: http://127.0.0.1:8080/ping
      headers: {X-Probe: [yes]}
      statuscode: 204
      timeout: 3s
      interval: 20s
      threshold: 2
  tcp: [{addr: "redis:6379", timeout: 2s, interval: 15s, threshold: 4}]
appliance:
  notifications: {statedir: /var/spool/events, maxqueue: 50, mediatype: v2}
"""


def load_text(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(text))
    return load(str(path), {}, paths=PATHS)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return list(info.value.problems)


def test_full_sections_are_read(tmp_path: Path) -> None:
    """Every notifications, health and http.debug key of Distribution is read and typed."""
    config = load_text(tmp_path, FULL)
    assert config.ignored == ()
    assert config.http.debug.addr == "127.0.0.1:5001"
    assert (config.http.debug.prometheus.enabled, config.http.debug.prometheus.path) == (
        True, "/prom")
    gitlab, off = config.notifications.endpoints
    assert config.notifications.include_references
    assert (gitlab.timeout, gitlab.threshold, gitlab.backoff, gitlab.disabled) == (0.5, 5, 1.0,
                                                                                  False)
    assert dict(gitlab.headers) == {"Authorization": ("Bearer s3cret",)}
    assert gitlab.ignored_media_types == ("application/octet-stream",
                                          "application/vnd.oci.image.config.v1+json")
    assert gitlab.ignored_actions == ("pull",)
    assert off.disabled and (off.timeout, off.threshold, off.backoff) == (1.0, 10, 1.0)
    health = config.health
    assert (health.storagedriver_enabled, health.storagedriver_interval,
            health.storagedriver_threshold) == (True, 10.0, 3)
    http, tcp, file = health.checks
    assert file == HealthCheckConfig("file", "/etc/registry-down", interval=5.0)
    assert (http.target, http.statuscode, http.timeout, http.interval, http.threshold) == (
        "http://127.0.0.1:8080/ping", 204, 3.0, 20.0, 2)
    assert dict(http.headers) == {"X-Probe": ("yes",)}
    assert (tcp.target, tcp.timeout, tcp.interval, tcp.threshold) == ("redis:6379", 2.0, 15.0, 4)
    events = config.appliance.notifications
    assert (events.statedir, events.maxqueue, events.mediatype) == ("/var/spool/events", 50,
                                                                   EVENTS_V2)


def test_defaults(tmp_path: Path) -> None:
    """Events wait under the filesystem root, 10000 at most, in Distribution 2.8's envelope."""
    config = load_text(tmp_path, MINIMAL)
    events = config.appliance.notifications
    assert (events.statedir, events.maxqueue, events.mediatype) == (
        "/srv/registry/appliance/events", 10000, EVENTS_V1)
    assert config.notifications.endpoints == () and config.health.checks == ()
    assert config.http.debug.addr == "" and not config.http.debug.prometheus.enabled
    inmemory = load_text(tmp_path, "version: 0.1\nstorage: {inmemory: {}}\n")
    assert inmemory.appliance.notifications.statedir == "/data/events"


def test_errors_name_their_keys(tmp_path: Path) -> None:
    """Bad values are reported by their dotted key, list items by index, all at once."""
    found = problems(tmp_path, MINIMAL + """\
http:
  debug: {addr: nowhere, prometheus: {path: metrics}}
notifications:
  endpoints:
    - {name: a, url: ftp://x, timeout: soon, threshold: many}
    - {name: a}
    - {name: "x/y", url: http://x, backoff: 0s}
  events: {includereferences: maybe}
health:
  storagedriver: {interval: 0s}
  file: [{interval: 1s}]
  tcp: [{addr: "no-port"}]
  http: [{uri: http://x, statuscode: ok}]
appliance:
  notifications: {maxqueue: 0, mediatype: v9}
""")
    assert found == [
        "http.debug.addr: must be host:port, like :5001 or 127.0.0.1:5001",
        "http.debug.prometheus.path: must start with /",
        "appliance.notifications.maxqueue: must be 1 or more",
        "appliance.notifications.mediatype: must be one of "
        f"{EVENTS_V1}, {EVENTS_V2}, v1, v2",
        "notifications.endpoints[0].url: must be an http or https URL",
        "notifications.endpoints[0].threshold: must be a whole number",
        "notifications.endpoints[0].timeout: must be a duration like 168h, 1h30m or 10s",
        "notifications.endpoints[1].url: required",
        "notifications.endpoints[1].name: 'a' is used by another endpoint",
        "notifications.endpoints[2].name: must not contain / (it names a folder of queued events)",
        "notifications.endpoints[2].backoff: must be longer than zero",
        "notifications.events.includereferences: must be true or false",
        "health.http[0].statuscode: must be a whole number",
        "health.tcp[0].addr: must be host:port",
        "health.file[0].file: required",
        "health.storagedriver.interval: must be longer than zero",
    ]


def test_prometheus_needs_the_debug_addr(tmp_path: Path) -> None:
    """Metrics are served on http.debug.addr only, so enabling them without it is an error."""
    assert problems(tmp_path, MINIMAL + "http: {debug: {prometheus: {enabled: true}}}\n") == [
        "http.debug.prometheus.enabled: needs http.debug.addr: metrics are served there"]


def test_redacted_yaml_hides_webhook_credentials(tmp_path: Path) -> None:
    """The effective config shows the new sections, with endpoint Authorization headers hidden."""
    text = redacted_yaml(load_text(tmp_path, FULL))
    assert "s3cret" not in text and "<redacted>" in text
    reloaded = load_text(tmp_path, text.replace("<redacted>", "x"))
    assert reloaded.ignored == ()
    assert reloaded.health == load_text(tmp_path, FULL).health


_KEYS = st.sampled_from(["version", "storage", "inmemory", "http", "addr", "debug", "prometheus",
                         "enabled", "path", "notifications", "events", "includereferences",
                         "endpoints", "name", "url", "headers", "timeout", "threshold",
                         "backoff", "disabled", "ignoredmediatypes", "ignore", "mediatypes",
                         "actions", "health", "storagedriver", "interval", "file", "tcp",
                         "uri", "statuscode", "appliance", "statedir", "maxqueue", "mediatype"])
_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_KEYS, _TREES, max_size=6))
def test_no_traceback_for_any_input(tmp_path: Path, tree: dict) -> None:
    """Whatever these sections hold, load returns a Config or raises ConfigError."""
    tree = {"version": "0.1", "storage": {"inmemory": {}}, **tree}
    try:
        config = load_text(tmp_path, yaml.safe_dump(tree))
    except ConfigError as error:
        assert error.problems
    else:
        redacted_yaml(config)
