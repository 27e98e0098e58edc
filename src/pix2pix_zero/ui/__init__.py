"""The `pix2pix-zero ui` web app (Gradio): upload or pick an image, edit it, download the PNGs with metadata.

Gradio is an optional dependency (`pip install -e ".[ui]"` in the checkout): this package imports it only
when `build_app` or `launch` is used, so `pix2pix-zero --help` works without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_app", "launch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
