"""Pure OCI rules: digests, names and tags, media types, manifest parsing. No I/O, no Twisted."""
