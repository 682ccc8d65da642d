"""The one place where errors become text on stderr and an exit code.

Operations raise :class:`~corral.errors.CorralError`; click raises its own
usage errors. Nothing else in the CLI catches exceptions, and no user ever
sees a traceback: an unexpected exception is reported in one line as an
internal error, with ``CORRAL_DEBUG=1`` to show the traceback. Every code
comes from :class:`corral.errors.Outcome`; none is written here.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

import click

from corral.errors import CorralError, Outcome


def run_guarded(main: Callable[[], object]) -> int:
    """Run ``main`` (a click command in non-standalone mode) and return the exit code."""
    try:
        result = main()
    except CorralError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        print("aborted: nothing was changed", file=sys.stderr)
        return Outcome.CONFLICT.exit_code
    except click.UsageError as error:
        error.show(file=sys.stderr)
        return Outcome.USAGE.exit_code
    except click.ClickException as error:
        error.show(file=sys.stderr)
        return Outcome.INVALID_REQUEST.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Outcome.INTERRUPTED.exit_code
    except BrokenPipeError:
        return Outcome.OK.exit_code
    except Exception as error:  # the last resort: one line, not a traceback
        if os.environ.get("CORRAL_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        print("hint: rerun with CORRAL_DEBUG=1 to see where it happened", file=sys.stderr)
        return Outcome.INTERNAL.exit_code
    if isinstance(result, Outcome):
        return result.exit_code
    return Outcome.OK.exit_code
