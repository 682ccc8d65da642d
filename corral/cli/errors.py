"""The one place where errors become text on stderr and an exit code.

Operations raise :class:`~corral.errors.CorralError`; click raises its own
usage errors. Nothing else in the CLI catches exceptions, and no user ever
sees a traceback: an unexpected exception is reported in one line as an
internal error (exit 70), with ``CORRAL_DEBUG=1`` to show the traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

import click

from corral.errors import CorralError

INTERNAL_ERROR = 70


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
        print("aborted", file=sys.stderr)
        return 1
    except click.ClickException as error:
        error.show(file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # the last resort: one line, not a traceback
        if os.environ.get("CORRAL_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        print("hint: rerun with CORRAL_DEBUG=1 to see where it happened", file=sys.stderr)
        return INTERNAL_ERROR
    return result if isinstance(result, int) else 0
