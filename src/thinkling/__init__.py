"""thinkling: distill chain-of-thought reasoning into small students that reason with few tokens."""

__version__ = "0.1.0"
