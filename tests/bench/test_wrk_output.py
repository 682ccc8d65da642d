"""The load benchmark's reading of wrk's report, on a report wrk really printed
and one in its format with the rarer units, so a change in either cannot turn
the benchmark's figures into nonsense unseen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from wrk_output import WrkOutputError, parse_wrk

# wrk 4.1.0, every answer a 404 (a plain http.server without the path)
REFUSED = """\
Running 2s test @ http://127.0.0.1:18999/nonexistent
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.33ms   60.88ms 363.66ms   91.89%
    Req/Sec   409.67    218.64     0.91k    69.44%
  Latency Distribution
     50%    6.07ms
     75%    9.79ms
     90%   54.96ms
     99%  316.33ms
  1481 requests in 2.09s, 752.25KB read
  Non-2xx or 3xx responses: 1481
Requests/sec:    706.97
Transfer/sec:    359.09KB
"""

# wrk's format with the units and lines a short loopback run rarely shows:
# microseconds, minutes, socket errors
MIXED_UNITS = """\
Running 1m test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.40us    1.02ms  1.20s    97.12%
    Req/Sec     8.01k   512.33     9.10k    71.00%
  Latency Distribution
     50%  640.00us
     75%  790.00us
     90%    1.10ms
     99%    1.20s
  960000 requests in 1.00m, 140.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
Requests/sec:  16000.00
Transfer/sec:      2.33MB
"""


def test_a_report_of_refused_requests_counts_none_as_answered() -> None:
    report = parse_wrk(REFUSED)
    assert report.requests == 1481
    assert report.seconds == pytest.approx(2.09)
    assert report.requests_per_s == pytest.approx(706.97)
    assert report.latency_s == pytest.approx({50: 0.00607, 75: 0.00979, 90: 0.05496,
                                              99: 0.31633})
    assert report.p99_s == pytest.approx(0.31633)
    assert report.not_ok == 1481
    assert report.ok_per_s == 0
    assert report.socket_errors == 0


def test_units_from_microseconds_to_minutes_are_read_as_seconds() -> None:
    report = parse_wrk(MIXED_UNITS)
    assert report.seconds == pytest.approx(60.0)
    assert report.latency_s[50] == pytest.approx(0.00064)
    assert report.latency_s[90] == pytest.approx(0.0011)
    assert report.p99_s == pytest.approx(1.2)
    assert report.socket_errors == 9
    assert report.not_ok == 0
    assert report.ok_per_s == pytest.approx(16000.0)


def test_a_report_without_the_latency_distribution_is_refused() -> None:
    without = "\n".join(line for line in REFUSED.splitlines() if "%  " not in line)
    with pytest.raises(WrkOutputError, match="--latency"):
        parse_wrk(without)


def test_the_output_of_a_failed_wrk_is_refused() -> None:
    with pytest.raises(WrkOutputError, match="Requests/sec"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
