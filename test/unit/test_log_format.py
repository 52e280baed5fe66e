"""The one log format's timestamps and lines (hatrac.logs), as pure functions."""

import json
import time

from hatrac.logs import json_line, timestamp


def test_timestamp_formats_each_second_anew():
    # the formatted second is reused within a second: alternating seconds must not mix
    moments = [1_700_000_000.25, 1_700_000_001.5, 1_700_000_000.999, 86_399.0, 0.0015]
    for seconds in moments + moments[::-1]:
        whole = int(seconds)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        expected += f".{int((seconds - whole) * 1000):03d}Z"
        assert timestamp(seconds) == expected


def test_json_line_is_compact_ordered_and_ascii():
    line = json_line("access", {"path": "/hatrac/é", "status": 200, "extra": None})
    assert line.startswith('{"time":"') and ',"kind":"access",' in line
    assert " " not in line and "é" not in line  # compact separators, ASCII escapes
    assert json.loads(line)["path"] == "/hatrac/é"
    assert json.loads(json_line("x", {"odd": object}))["odd"].startswith("<class")
