"""``python -m pix2pix_zero``: the same command line as ``pix2pix-zero``."""

from .cli import main

if __name__ == "__main__":
    main()
