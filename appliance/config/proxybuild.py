"""`proxy` (Distribution's pull-through cache) and `appliance.proxy.prefix` (ours)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .model import ProxyConfig
from .reader import Section

# One or more repository name components (Distribution's grammar), as `hub` or `mirrors/hub`.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PREFIX = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


def prefix(appliance_proxy: Section) -> str:
    """`appliance.proxy.prefix`: "" (the whole registry mirrors), else `name/` with the slash."""
    text = appliance_proxy.string("prefix", "").strip().strip("/")
    if text and not _PREFIX.fullmatch(text):
        appliance_proxy.problem("prefix", "must be repository name components, like hub/")
        return ""
    return f"{text}/" if text else ""


def proxy(section: Section, mirrored_prefix: str) -> ProxyConfig | None:
    """None when `proxy` is absent; errors name the key (`proxy.remoteurl: required`)."""
    if not section.keys():
        if mirrored_prefix:
            section.problem("", "appliance.proxy.prefix is set but proxy.remoteurl is not")
        return None
    url = section.required("remoteurl").rstrip("/")
    parts = urlsplit(url) if url else None
    if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc
                              or parts.query or parts.fragment):
        section.problem("remoteurl", "must be an http or https URL like https://registry-1.docker.io")
    elif parts is not None and "@" in parts.netloc:
        # The URL is shown in logs and in error messages to clients: no credentials in it.
        section.problem("remoteurl", "must not hold credentials; set proxy.username and "
                                     "proxy.password instead")
    username, password = section.string("username", ""), section.string("password", "")
    if bool(username) != bool(password):
        section.problem("password" if username else "username",
                        "username and password go together")
    ttl = section.duration("ttl", ProxyConfig.ttl)
    if ttl <= 0:
        section.problem("ttl", "must be longer than zero")
    return ProxyConfig(remoteurl=url, username=username, password=password, ttl=ttl,
                       prefix=mirrored_prefix)
