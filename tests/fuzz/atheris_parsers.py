"""An atheris (libFuzzer) target for the pure parsers: references, digests, manifests, ranges.

Run as `python -m tests.fuzz.atheris_parsers -runs=N` (libFuzzer flags); it exits non-zero on
the first input that makes a parser raise anything but its own `ValueError`, or accept what
breaks an invariant (a name that could leave its folder, a range outside the blob).
`test_atheris.py` runs it for a bounded number of inputs.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from appliance.api.ranges import parse_content_range, parse_range
    from appliance.oci import manifest
    from appliance.oci.digest import Digest
    from appliance.oci.reference import check_name, check_tag, split_reference


def _name_is_safe(name: str) -> None:
    parts = name.split("/")
    assert all(part and part not in (".", "..") for part in parts), name
    assert name.isascii() and name == name.strip() and "\\" not in name, name


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    choice = provider.ConsumeIntInRange(0, 5)
    text = provider.ConsumeUnicodeNoSurrogates(300)
    try:
        if choice == 0:
            _name_is_safe(check_name(text))
        elif choice == 1:
            tag = check_tag(text)
            assert "/" not in tag and tag.isascii() and tag == tag.strip(), tag
        elif choice == 2:
            digest = Digest.parse(text)
            assert str(digest) == text, (text, str(digest))
        elif choice == 3:
            _name_is_safe(split_reference(text)[0])
        elif choice == 4:
            size = provider.ConsumeIntInRange(1, 10**12)
            wanted = parse_range(text, size)
            if wanted is not None:
                assert 0 <= wanted[0] <= wanted[1] < size, (text, size, wanted)
            first, last = parse_content_range(text.removeprefix("bytes="))
            assert 0 <= first <= last, text
        else:
            manifest.parse(provider.ConsumeBytes(4096) or text.encode(), text[:40] or None)
    except ValueError:
        pass  # every parser's refusal (InvalidName, InvalidDigest, InvalidManifest, Unsatisfiable…)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
