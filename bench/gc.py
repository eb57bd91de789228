"""Time garbage collection over N images on the filesystem driver.

    .venv/bin/python -m bench.gc [--images 1000]

Builds N images (a config, two layers from a shared pool of 200, one layer of their own) in
50 repositories, untags a fifth of them, then times a dry run and a real run with
--delete-untagged, in this process, as `registry-appliance garbage-collect` runs it.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

from appliance.registry.gc import GarbageCollector
from tests.gc.store import open_registry, push_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="ra-gc-bench-") as root:
        registry = open_registry(root)
        pool = [os.urandom(4096) for _ in range(200)]
        started = time.perf_counter()
        images = [push_image(registry, f"bench/repo{i % 50}", f"v{i}", rng.sample(pool, 2) + [os.urandom(1024)])
                  for i in range(args.images)]
        built = time.perf_counter() - started
        for image in images[: args.images // 5]:
            registry.manifests.delete_tag(image.name, image.tag)
        clock = lambda: time.time() + 7200  # noqa: E731  everything is older than the grace period
        timings = {}
        for label, dry in (("dry run", True), ("real run", False)):
            started = time.perf_counter()
            result = GarbageCollector(registry.driver, registry.blobs, 3600, clock).run(dry, delete_untagged=True)
            timings[label] = (time.perf_counter() - started, len(result.manifests), len(result.blobs))
    print(f"{args.images} images in 50 repositories (built in {built:.1f}s), a fifth untagged:")
    for label, (seconds, manifests, blobs) in timings.items():
        print(f"  GC --delete-untagged {label}: {seconds:.2f}s, {manifests} manifests, {blobs} blobs")


if __name__ == "__main__":
    main()
