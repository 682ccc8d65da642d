"""Reading what ``wrk --latency`` prints: requests per second, the latency
percentiles, and the answers that were not a success.

wrk has no machine-readable output without a Lua script; its text report is
stable (the same since wrk 4.0), and this parser refuses a report it does not
recognise instead of guessing, so a changed format fails loudly (the tests
run it on a captured report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# wrk prints durations with the unit it finds most readable.
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"
_TOTAL = re.compile(r"^\s*(\d+) requests in " + _DURATION + ",", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)\s*$", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+" + _DURATION + r"\s*$", re.MULTILINE)
_NOT_OK = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$",
    re.MULTILINE)


class WrkOutputError(ValueError):
    """wrk's report is not in the form this parser knows."""


@dataclass(frozen=True, slots=True)
class WrkReport:
    """One wrk run: counts, rate and latency percentiles (seconds)."""

    requests: int
    seconds: float
    requests_per_s: float
    latency_s: dict[int, float]  # percentile (50, 75, 90, 99) -> seconds
    not_ok: int  # answers whose status was not 2xx or 3xx
    socket_errors: int  # connect, read, write errors and timeouts together

    @property
    def p99_s(self) -> float:
        return self.latency_s[99]

    @property
    def ok_per_s(self) -> float:
        """Successful answers per second: a refused request is fast and proves nothing."""
        return (self.requests - self.not_ok) / self.seconds if self.seconds else 0.0


def _seconds(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


def parse_wrk(text: str) -> WrkReport:
    """The figures of one ``wrk --latency`` report; :class:`WrkOutputError` when a
    figure is missing (wrk failed, or was run without ``--latency``)."""
    total, rate = _TOTAL.search(text), _RATE.search(text)
    percentiles = {int(p): _seconds(n, u) for p, n, u in _PERCENTILE.findall(text)}
    if total is None or rate is None:
        raise WrkOutputError("no 'N requests in T' and 'Requests/sec:' lines in wrk's output")
    if 99 not in percentiles:
        raise WrkOutputError("no latency distribution in wrk's output (run it with --latency)")
    not_ok = _NOT_OK.search(text)
    sockets = _SOCKET.search(text)
    return WrkReport(
        requests=int(total.group(1)),
        seconds=_seconds(total.group(2), total.group(3)),
        requests_per_s=float(rate.group(1)),
        latency_s=percentiles,
        not_ok=int(not_ok.group(1)) if not_ok else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )
