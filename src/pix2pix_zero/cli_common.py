"""What every command-line front end shares (the main CLI, `bench`, `ui`): one-line user errors and quiet loading.

Both `cli.py` and `bench/commands.py` import this module; neither imports the other's internals.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import click

#: Expected failures (bad image, missing model, existing output, bad value): shown as one line, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report USER_ERRORS raised by a command as one clear line and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except USER_ERRORS as error:
            raise click.ClickException(str(error) or type(error).__name__) from error

    return wrapper


# diffusers passes huggingface_hub an argument it has deprecated: a warning no user of the CLI can act on
warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*", category=UserWarning)


def quiet_libraries(quiet: bool = True) -> None:
    """Switch off diffusers' and transformers' weight-loading bars and info messages: loading the model is not a
    long step, and our own bars (inversion, edit, sentence embedding) still show. quiet=False (--verbose) turns
    them back on."""
    import diffusers
    import transformers

    for logging in (diffusers.utils.logging, transformers.utils.logging):
        if quiet:
            logging.disable_progress_bar()
            logging.set_verbosity_error()
        else:
            logging.enable_progress_bar()
            logging.set_verbosity_warning()
