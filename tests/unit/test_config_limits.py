"""`appliance.limits`: header caps, connection timeouts and upload session caps."""

from __future__ import annotations

import pytest
import yaml

from appliance.config import redacted_yaml
from appliance.config.model import LimitsConfig
from tests.unit.test_config import MINIMAL, load_text, problems


def limits(text: str) -> str:
    return MINIMAL + "appliance:\n  limits: " + text + "\n"


def test_defaults(tmp_path) -> None:
    """Without the keys: 64 KiB and 200 headers, 60 s idle, 30 s for headers, 1000 sessions per
    repository that count for an hour, no total cap."""
    assert load_text(tmp_path, MINIMAL).appliance.limits == LimitsConfig(
        maxheadersize=64 * 1024, maxheaders=200, idletimeout=60.0, headertimeout=30.0,
        maxuploads=0, maxrepositoryuploads=1000, uploadidle=3600.0)


def test_values_are_read_and_survive_config_check(tmp_path) -> None:
    """Sizes, counts and durations are read in their usual forms, and `config check` output
    loads back to the same limits."""
    config = load_text(tmp_path, limits(
        "{maxheadersize: 32KiB, maxheaders: 50, idletimeout: 2m, headertimeout: 5s, "
        "maxuploads: 10, maxrepositoryuploads: 3, uploadidle: 90s}"))
    assert config.appliance.limits == LimitsConfig(32 * 1024, 50, 120.0, 5.0, 10, 3, 90.0)
    shown = yaml.safe_load(redacted_yaml(config))["appliance"]["limits"]
    assert shown["idletimeout"] == "2m"
    assert shown["maxrepositoryuploads"] == 3
    assert load_text(tmp_path, redacted_yaml(config)).appliance.limits == config.appliance.limits


@pytest.mark.parametrize(("text", "expected"), [
    ("{maxheadersize: big}", "appliance.limits.maxheadersize: must be a size like 512MiB, 10GiB "
                             "or a number of bytes"),
    ("{maxheadersize: 100}", "appliance.limits.maxheadersize: must be 1KiB or more (docker's own "
                             "headers need it)"),
    ("{maxheaders: many}", "appliance.limits.maxheaders: must be a whole number"),
    ("{maxuploads: -1}", "appliance.limits.maxuploads: must be 0 (no limit) or more"),
    ("{maxrepositoryuploads: -5}",
     "appliance.limits.maxrepositoryuploads: must be 0 (no limit) or more"),
    ("{idletimeout: 0s}", "appliance.limits.idletimeout: must be longer than 0s"),
    ("{headertimeout: soon}",
     "appliance.limits.headertimeout: must be a duration like 168h, 1h30m or 10s"),
    ("{uploadidle: 0s}", "appliance.limits.uploadidle: must be longer than 0s"),
    ("{maxconnections: 5}", "appliance.limits.maxconnections: unknown key"),
])
def test_bad_values_name_the_key(tmp_path, text: str, expected: str) -> None:
    """Each bad value is one problem that starts with its dotted key."""
    assert problems(tmp_path, limits(text)) == [expected]
