"""What only the S3 driver does: Distribution's key layout, error mapping, OSS, configuration.

The contract suite covers the driver interface itself; these pin what it means on S3.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from botocore.stub import Stubber

from appliance.config.build import build
from appliance.config.defaults import DefaultPaths
from appliance.server import open_driver
from appliance.storage.driver import PathNotFound, StorageError, StorageUnavailable
from appliance.storage.s3 import (
    OSSOptions,
    S3Driver,
    S3Options,
    addressing_style,
    endpoint_url,
    make_client,
    oss_as_s3,
)
from tests.seaweedfs import SeaweedFS
from tests.server import free_port

PATHS = DefaultPaths("/data", "/certs", "/htpasswd", "/admin.sock")


def _driver(seaweedfs: SeaweedFS, bucket: str, root: str, **extra: object) -> S3Driver:
    return S3Driver(S3Options(bucket=bucket, regionendpoint=seaweedfs.endpoint, accesskey="registrykey",
                              secretkey="registrysecret", secure=False, rootdirectory=root,
                              chunksize=5 << 20, **extra))  # type: ignore[arg-type]


def _keys(seaweedfs: SeaweedFS, bucket: str, prefix: str) -> list[str]:
    listing = seaweedfs.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(entry["Key"] for entry in listing.get("Contents") or [] if not entry["Key"].endswith("/"))


@pytest.mark.parametrize("root", ["/some/root", "some/root/", "/some/root/"])
def test_keys_are_distributions(seaweedfs: SeaweedFS, s3_bucket: str, root: str) -> None:
    """Keys are rootdirectory + path with the slashes trimmed, as Distribution's s3-aws driver
    makes them (checked against docker-registry 2.8.2 on SeaweedFS: `some/root/docker/...`)."""
    unique = uuid.uuid4().hex[:8]
    driver = _driver(seaweedfs, s3_bucket, root.replace("root", f"root-{unique}"))
    driver.put_content("/docker/registry/v2/repositories/lib/app/_layers/sha256/ab/link", b"x")
    assert _keys(seaweedfs, s3_bucket, f"some/root-{unique}") == [
        f"some/root-{unique}/docker/registry/v2/repositories/lib/app/_layers/sha256/ab/link"]
    assert driver.list("/") == ["/docker"]


def test_an_empty_rootdirectory_uses_the_bucket_root(seaweedfs: SeaweedFS) -> None:
    """Without rootdirectory, a path's key is the path without its leading slash."""
    bucket = seaweedfs.create_bucket("noroot")
    try:
        driver = _driver(seaweedfs, bucket, "")
        driver.put_content("/docker/registry/v2/blobs/x", b"x")
        assert _keys(seaweedfs, bucket, "") == ["docker/registry/v2/blobs/x"]
        assert driver.list("/") == ["/docker"]
        assert [info.path for info in driver.walk("/")] == ["/docker/registry/v2/blobs/x"]
    finally:
        seaweedfs.delete_bucket(bucket)


def test_a_refused_connection_is_unavailable() -> None:
    """No server at the endpoint: StorageUnavailable (clients see 503), for reads and writes."""
    driver = S3Driver(S3Options(bucket="b", regionendpoint=f"http://127.0.0.1:{free_port()}",
                                accesskey="k", secretkey="s", max_attempts=1, connect_timeout=1))
    for call in (lambda: driver.get_content("/x"), lambda: driver.put_content("/x", b"x"),
                 lambda: driver.stat("/x"), lambda: driver.list("/x"),
                 lambda: list(driver.walk("/x"))):
        with pytest.raises(StorageUnavailable):
            call()


def _stubbed() -> tuple[S3Driver, Stubber]:
    options = S3Options(bucket="b", regionendpoint="http://127.0.0.1:1", accesskey="k", secretkey="s")
    client = make_client(options)
    return S3Driver(options, client=client), Stubber(client)


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500),
                                               ("ServiceUnavailable", 503), ("TooManyRequests", 429)])
def test_throttling_and_server_errors_are_unavailable(code: str, status: int) -> None:
    """Throttling and 5xx answers (after botocore's retries) are StorageUnavailable."""
    driver, stub = _stubbed()
    for _ in range(3):  # the standard retry mode tries three times
        stub.add_client_error("get_object", code, http_status_code=status)
    with stub, pytest.raises(StorageUnavailable):
        driver.get_content("/x")


@pytest.mark.parametrize(("code", "status"), [("NoSuchBucket", 404), ("AccessDenied", 403)])
def test_configuration_errors_are_storage_errors(code: str, status: int) -> None:
    """A missing bucket or refused credentials are plain StorageErrors (500, logged), not a
    "retry later" and not "not found"."""
    driver, stub = _stubbed()
    stub.add_client_error("get_object", code, http_status_code=status)
    with stub, pytest.raises(StorageError) as raised:
        driver.get_content("/x")
    assert not isinstance(raised.value, StorageUnavailable | PathNotFound)
    assert code in str(raised.value)


def test_create_exclusive_without_conditional_puts() -> None:
    """A server that refuses If-None-Match gets a check-then-put (a documented best effort)."""
    driver, stub = _stubbed()
    stub.add_client_error("put_object", "NotImplemented", http_status_code=501)
    stub.add_client_error("head_object", "404", http_status_code=404)
    stub.add_response("put_object", {})
    stub.add_client_error("put_object", "NotImplemented", http_status_code=501)
    stub.add_response("head_object", {"ContentLength": 1})
    with stub:
        assert driver.create_exclusive("/lock", b"1") is True
        assert driver.create_exclusive("/lock", b"2") is False


def test_seaweedfs_honours_conditional_puts(seaweedfs: SeaweedFS, s3_bucket: str) -> None:
    """The real server refuses a second If-None-Match put (no fallback involved)."""
    client = seaweedfs.client()
    key = f"conditional/{uuid.uuid4().hex}"
    client.put_object(Bucket=s3_bucket, Key=key, Body=b"1", IfNoneMatch="*")
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"2", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"


def test_works_with_the_machine_ca_bundle(monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedFS,
                                          s3_bucket: str) -> None:
    """AWS_CA_BUNDLE set to the system bundle (as on the appliance's hosts) does not get in the
    way; Distribution 2.8.2 panics on it, we must not."""
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    driver = _driver(seaweedfs, s3_bucket, f"/cabundle/{uuid.uuid4().hex[:8]}")
    driver.put_content("/x", b"ok")
    assert driver.get_content("/x") == b"ok"


def test_endpoints_and_addressing() -> None:
    """A bare host:port takes its scheme from `secure`; path style follows Distribution 2.8
    (forced whenever regionendpoint is set) unless forcepathstyle says otherwise."""
    assert endpoint_url(S3Options(bucket="b", regionendpoint="minio:9000", secure=False)) == "http://minio:9000"
    assert endpoint_url(S3Options(bucket="b", regionendpoint="minio:9000")) == "https://minio:9000"
    assert endpoint_url(S3Options(bucket="b", regionendpoint="http://x/")) == "http://x"
    assert endpoint_url(S3Options(bucket="b")) is None
    assert addressing_style(S3Options(bucket="b", regionendpoint="http://x")) == "path"
    assert addressing_style(S3Options(bucket="b")) == "auto"
    assert addressing_style(S3Options(bucket="b", regionendpoint="http://x", forcepathstyle=False)) == "virtual"
    assert addressing_style(S3Options(bucket="b", forcepathstyle=True)) == "path"


def test_oss_maps_onto_its_s3_api() -> None:
    """Distribution's OSS keys become OSS's S3-compatible endpoint, virtual-hosted style, V4
    signatures for the region id, no storage class."""
    public = oss_as_s3(OSSOptions("id", "secret", "oss-cn-hangzhou", "bucket", rootdirectory="/r"))
    assert public.regionendpoint == "s3.oss-cn-hangzhou.aliyuncs.com"
    assert (public.region, public.secure, public.v4auth, public.storageclass) == ("cn-hangzhou", True, True, "NONE")
    assert (public.accesskey, public.secretkey, public.bucket, public.rootdirectory) == ("id", "secret", "bucket", "/r")
    assert addressing_style(public) == "virtual"
    internal = oss_as_s3(OSSOptions("id", "secret", "cn-beijing", "bucket", internal=True, secure=False))
    assert endpoint_url(internal) == "http://s3.oss-cn-beijing-internal.aliyuncs.com"
    custom = oss_as_s3(OSSOptions("id", "secret", "oss-cn-hangzhou", "b", endpoint="127.0.0.1:8333", secure=False))
    assert (endpoint_url(custom), addressing_style(custom)) == ("http://127.0.0.1:8333", "path")


def test_oss_config_serves_through_seaweedfs(seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path) -> None:
    """A `storage.oss` config (region id, no storage class) works against a real S3 server
    standing in for OSS at a custom endpoint."""
    config = build({
        "version": "0.1",
        "storage": {"oss": {"accesskeyid": "registrykey", "accesskeysecret": "registrysecret",
                            "region": "oss-cn-hangzhou", "bucket": s3_bucket, "secure": "false",
                            "endpoint": seaweedfs.endpoint.removeprefix("http://"),
                            "rootdirectory": f"/oss/{uuid.uuid4().hex[:8]}"}},
        "appliance": {"spooldir": str(tmp_path / "spool")},
    }, "test", PATHS)
    driver = open_driver(config)
    assert driver.name == "oss"
    assert driver.spool_directory() == str(tmp_path / "spool")
    driver.put_content("/a/b", b"through oss settings")
    assert driver.get_content("/a/b") == b"through oss settings"
    assert driver.list("/a") == ["/a/b"]


def test_s3_config_reaches_the_driver(tmp_path: Path) -> None:
    """Every `storage.s3` key lands in the driver's options; secrets too (but see redaction)."""
    config = build({
        "version": "0.1",
        "storage": {"s3": {"accesskey": "AK", "secretkey": "SK", "region": "eu-west-1",
                           "regionendpoint": "minio.example:9000", "forcepathstyle": "false",
                           "bucket": "registry", "secure": "true", "skipverify": "true",
                           "v4auth": "false", "chunksize": "8MiB", "rootdirectory": "/r",
                           "encrypt": "true", "keyid": "kms-key", "storageclass": "reduced_redundancy",
                           "multipartcopythresholdsize": "64MiB"}},
    }, "test", PATHS)
    driver = open_driver(config)
    assert isinstance(driver, S3Driver)
    options = driver.options
    assert (options.accesskey, options.secretkey, options.region, options.bucket) == ("AK", "SK", "eu-west-1", "registry")
    assert (options.forcepathstyle, options.skipverify, options.v4auth) == (False, True, False)
    assert (options.chunksize, options.multipartcopythresholdsize) == (8 << 20, 64 << 20)
    assert (options.encrypt, options.keyid, options.storageclass) == (True, "kms-key", "REDUCED_REDUNDANCY")
    assert driver._write_args == {"ContentType": "application/octet-stream", "ServerSideEncryption": "aws:kms",
                                  "SSEKMSKeyId": "kms-key", "StorageClass": "REDUCED_REDUNDANCY"}
    assert driver.client.meta.endpoint_url == "https://minio.example:9000"


def test_config_check_redacts_the_keys() -> None:
    """`config check` shows the object-store settings with every credential redacted."""
    from appliance.config import redacted_yaml

    s3 = build({"version": "0.1", "storage": {"s3": {
        "bucket": "b", "region": "r", "accesskey": "AKIAEXAMPLE", "secretkey": "s3cr3t",
        "sessiontoken": "t0ken"}}}, "test", PATHS)
    oss = build({"version": "0.1", "storage": {"oss": {
        "bucket": "b", "region": "r", "accesskeyid": "LTAIEXAMPLE", "accesskeysecret": "0ss-s3cr3t"}}},
        "test", PATHS)
    for config, secrets in ((s3, ("AKIAEXAMPLE", "s3cr3t", "t0ken")), (oss, ("LTAIEXAMPLE", "0ss-s3cr3t"))):
        shown = redacted_yaml(config)
        assert "bucket: b" in shown and "<redacted>" in shown
        for secret in secrets:
            assert secret not in shown
