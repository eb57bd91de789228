"""`storage.swift`: Distribution 2.8's keys, checked as its Swift driver checks them."""

from __future__ import annotations

from urllib.parse import urlsplit

from .model import SwiftConfig
from .reader import Section

MIN_CHUNK = 1 << 20  # Distribution's minChunkSize for Swift
MAX_CHUNK = 5 << 30  # Swift's default largest object: a segment cannot be bigger
ENDPOINT_TYPES = {"public": "public", "internal": "internal", "admin": "admin",
                  "publicurl": "public", "internalurl": "internal", "adminurl": "admin"}
TEMPURL_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")


def swift(params: Section) -> SwiftConfig:
    authurl = params.required("authurl")
    if authurl and not _is_url(authurl):
        params.problem("authurl", "must be a URL like https://keystone.example.com/v3 "
                                  "or http://swift.example.com/auth/v1.0")
    version = params.integer("authversion", SwiftConfig.authversion)
    if version not in (0, 1, 2, 3):
        params.problem("authversion", "must be 1, 2 or 3 (or left out: read from authurl)")
    chunksize = params.size("chunksize", SwiftConfig.chunksize)
    if chunksize < MIN_CHUNK:
        params.problem("chunksize", f"must be at least {MIN_CHUNK}")
    elif chunksize > MAX_CHUNK:
        params.problem("chunksize", f"must be at most {MAX_CHUNK}")
    methods = tuple(method.upper() for method in params.strings("tempurlmethods"))
    unknown = [method for method in methods if method not in TEMPURL_METHODS]
    if unknown:
        params.problem("tempurlmethods", f"unknown method {unknown[0]}; "
                                         f"known: {', '.join(TEMPURL_METHODS)}")
    return SwiftConfig(
        authurl=authurl,
        username=params.required("username"),
        password=params.required("password"),
        container=_container(params),
        authversion=version,
        tenant=params.string("tenant", ""),
        tenantid=params.string("tenantid", ""),
        domain=params.string("domain", ""),
        domainid=params.string("domainid", ""),
        tenantdomain=params.string("tenantdomain", ""),
        tenantdomainid=params.string("tenantdomainid", ""),
        trustid=params.string("trustid", ""),
        region=params.string("region", ""),
        endpointtype=params.choice("endpointtype", SwiftConfig.endpointtype, ENDPOINT_TYPES),
        insecureskipverify=params.boolean("insecureskipverify", SwiftConfig.insecureskipverify),
        chunksize=chunksize,
        prefix=params.string("prefix", ""),
        secretkey=params.string("secretkey", ""),
        accesskey=params.string("accesskey", ""),
        tempurlcontainerkey=params.boolean("tempurlcontainerkey", SwiftConfig.tempurlcontainerkey),
        tempurlmethods=methods,
    )


def _container(params: Section) -> str:
    """Swift refuses container names with a slash, or longer than 256 bytes."""
    container = params.required("container")
    if "/" in container or len(container.encode()) > 256:
        params.problem("container", "must be a Swift container name: no '/', at most 256 bytes")
    return container


def _is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
