"""The one log format's timestamps and lines (hatrac.logs), and the handler of access lines."""

import io
import json
import logging
import threading
import time

from hatrac.logs import LineHandler, json_line, timestamp


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


def test_the_line_handler_writes_whole_lines_from_many_threads(tmp_path):
    path = tmp_path / "access.log"
    with open(path, "a") as stream:
        handler = LineHandler(stream)
        assert handler.fd == stream.fileno()

        def write(number: int) -> None:
            for line in range(300):
                handler.write_line(json_line("access", {"thread": number, "line": line}))

        threads = [threading.Thread(target=write, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logging.getLogger("test.line").handlers[:] = [handler]  # records the usual way too
        logging.getLogger("test.line").warning("plain %s", "record")
    lines = path.read_text().splitlines()
    assert lines[-1] == "plain record"
    parsed = [json.loads(line) for line in lines[:-1]]  # no line cut or mixed with another
    assert sorted((e["thread"], e["line"]) for e in parsed) == [
        (number, line) for number in range(8) for line in range(300)
    ]


def test_the_line_handler_writes_a_stream_without_a_descriptor_as_a_stream_handler():
    stream = io.StringIO()
    handler = LineHandler(stream)
    assert handler.fd is None
    handler.write_line('{"kind":"access"}')
    handler.emit(logging.makeLogRecord({"msg": "second"}))
    assert stream.getvalue() == '{"kind":"access"}\nsecond\n'
