"""naskahd: files scanned official letters into an archive and a register.

The data flow, one module per stage:
    watch -> settle (+ complete) -> classify -> filing (store / age) -> register
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
