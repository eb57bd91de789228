"""The object-store sections of `storage:` (`s3`, `oss`) and the driver-independent `cache`."""

from __future__ import annotations

from urllib.parse import urlsplit

from .model import OSSConfig, S3Config
from .reader import Section

MIN_CHUNK = 5 << 20  # S3's smallest multipart part, and Distribution's minChunkSize
MAX_PART = 5 << 30
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                   "INTELLIGENT_TIERING", "GLACIER_IR", "OUTPOSTS", "NONE")
OBJECT_ACLS = ("private", "public-read", "public-read-write", "authenticated-read",
               "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
               "log-delivery-write")
BLOB_DESCRIPTOR_CACHES = {"inmemory": "inmemory", "layerinfo": "inmemory"}


def s3(params: Section) -> S3Config:
    bucket, region = params.required("bucket"), params.required("region")
    accesskey, secretkey = params.string("accesskey", ""), params.string("secretkey", "")
    if bool(accesskey) != bool(secretkey):
        params.problem("secretkey" if accesskey else "accesskey",
                       "required with the other key (or leave both out for the AWS credential chain)")
    endpoint = params.string("regionendpoint", "")
    if endpoint and not _is_endpoint(endpoint):
        params.problem("regionendpoint", "must be a URL like https://s3.example.com or host:port")
    storageclass = params.string("storageclass", S3Config.storageclass).upper()
    if storageclass not in STORAGE_CLASSES:
        params.problem("storageclass", f"must be one of {', '.join(STORAGE_CLASSES)}")
    acl = params.string("objectacl", S3Config.objectacl)
    if acl not in OBJECT_ACLS:
        params.problem("objectacl", f"must be one of {', '.join(OBJECT_ACLS)}")
    concurrency = params.integer("multipartcopymaxconcurrency", S3Config.multipartcopymaxconcurrency)
    if concurrency < 1:
        params.problem("multipartcopymaxconcurrency", "must be 1 or more")
    return S3Config(
        bucket=bucket,
        region=region,
        regionendpoint=endpoint,
        accesskey=accesskey,
        secretkey=secretkey,
        sessiontoken=params.string("sessiontoken", ""),
        forcepathstyle=params.boolean("forcepathstyle", False) if params.has("forcepathstyle") else None,
        secure=params.boolean("secure", S3Config.secure),
        skipverify=params.boolean("skipverify", S3Config.skipverify),
        v4auth=params.boolean("v4auth", S3Config.v4auth),
        chunksize=_part_size(params, "chunksize", S3Config.chunksize, MIN_CHUNK),
        multipartcopychunksize=_part_size(params, "multipartcopychunksize",
                                          S3Config.multipartcopychunksize, MIN_CHUNK),
        multipartcopymaxconcurrency=concurrency,
        multipartcopythresholdsize=_part_size(params, "multipartcopythresholdsize",
                                              S3Config.multipartcopythresholdsize, 0),
        rootdirectory=params.string("rootdirectory", ""),
        encrypt=params.boolean("encrypt", S3Config.encrypt),
        keyid=params.string("keyid", ""),
        storageclass=storageclass,
        objectacl=acl,
        useragent=params.string("useragent", ""),
        usedualstack=params.boolean("usedualstack", False),
        accelerate=params.boolean("accelerate", False),
    )


def oss(params: Section) -> OSSConfig:
    endpoint = params.string("endpoint", "")
    if endpoint and not _is_endpoint(endpoint):
        params.problem("endpoint", "must be a host name like oss-cn-hangzhou.aliyuncs.com, or a URL")
    return OSSConfig(
        accesskeyid=params.required("accesskeyid"),
        accesskeysecret=params.required("accesskeysecret"),
        region=params.required("region"),
        bucket=params.required("bucket"),
        endpoint=endpoint,
        internal=params.boolean("internal", OSSConfig.internal),
        encrypt=params.boolean("encrypt", OSSConfig.encrypt),
        secure=params.boolean("secure", OSSConfig.secure),
        chunksize=_part_size(params, "chunksize", OSSConfig.chunksize, MIN_CHUNK),
        rootdirectory=params.string("rootdirectory", ""),
    )


def blob_descriptor_cache(cache: Section) -> str:
    """`storage.cache.blobdescriptor`: "inmemory" (also its old name `layerinfo`) or none.
    Distribution's `redis` needs a redis server we do not talk to: refused, not ignored."""
    name = cache.string("blobdescriptor", "") or cache.string("layerinfo", "")
    key = "blobdescriptor" if cache.has("blobdescriptor") else "layerinfo"
    if name and name not in BLOB_DESCRIPTOR_CACHES:
        cache.problem(key, "must be inmemory (redis is not supported)")
        return ""
    return BLOB_DESCRIPTOR_CACHES.get(name, "")


def _part_size(params: Section, key: str, default: int, minimum: int) -> int:
    value = params.size(key, default)
    if value < minimum:
        params.problem(key, f"must be at least {minimum}")
    elif value > MAX_PART:
        params.problem(key, f"must be at most {MAX_PART}")
    return value


def _is_endpoint(text: str) -> bool:
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        port = parts.port  # raises on a bad port
    except ValueError:
        return False
    return bool(parts.hostname) and parts.scheme in ("", "http", "https") and (port is None or port > 0)
