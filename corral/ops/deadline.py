"""Asking many service hosts at once without letting one that does not answer hang us.

A libvirt call on a host that is down can block for minutes (a TCP connect
to a dead address, a daemon that accepts and never replies), and libvirt's
API takes no timeout. Each call therefore runs in a daemon thread; whatever
has not finished by the deadline is reported as :class:`NoAnswer` and left
to finish (or not) on its own, without keeping the process alive at exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from corral.errors import CorralError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The call did not finish within ``timeout_s``."""

    timeout_s: float

    def __str__(self) -> str:
        return f"no answer within {self.timeout_s:g} s"


def describe_failure(answer: object) -> str:
    """One line for a failed or unanswered call: a Corral error's message, the
    deadline, or the exception's type and text. KeyboardInterrupt and the like
    are re-raised: they are no host's fault."""
    if isinstance(answer, CorralError):
        return answer.message
    if isinstance(answer, NoAnswer):
        return str(answer)
    if isinstance(answer, Exception):
        return f"{type(answer).__name__}: {answer}"
    raise answer if isinstance(answer, BaseException) else TypeError(answer)


def each_within(
    fn: Callable[[T], R], items: Iterable[T], timeout_s: float
) -> list[R | BaseException | NoAnswer]:
    """``fn(item)`` for every item, all at once, in input order: the result, the
    exception it raised, or :class:`NoAnswer` when it was still running at the
    deadline (one deadline for all of them, counted from the call)."""
    items = list(items)
    results: list[R | BaseException | NoAnswer] = [NoAnswer(timeout_s)] * len(items)
    done = [threading.Event() for _ in items]

    def run(index: int, item: T) -> None:
        try:
            results[index] = fn(item)
        except BaseException as error:  # handed to the caller, never lost
            results[index] = error
        finally:
            done[index].set()

    for index, item in enumerate(items):
        threading.Thread(target=run, args=(index, item), daemon=True).start()
    deadline = time.monotonic() + timeout_s
    answered: list[R | BaseException | NoAnswer] = []
    for index, event in enumerate(done):
        finished = event.wait(max(0.0, deadline - time.monotonic()))
        answered.append(results[index] if finished else NoAnswer(timeout_s))
    return answered
