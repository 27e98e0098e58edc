"""pix2pix-zero: zero-shot image-to-image translation with diffusion models (Parmar et al., SIGGRAPH 2023)."""

__version__ = "0.1.0"

from .api import EditOptions, EditResult, Inversion, Pix2PixZero
from .captioning import BlipCaptioner, Captioner
from .components import Components, ModelNotAvailableError, load_components
from .config import PRESETS, EditConfig, ImageConfig, InversionConfig, Preset, get_preset

__all__ = [
    "PRESETS", "BlipCaptioner", "Captioner", "Components", "EditConfig", "EditOptions", "EditResult", "ImageConfig", "Inversion",
    "InversionConfig", "ModelNotAvailableError", "Pix2PixZero", "Preset", "get_preset", "load_components",
]
