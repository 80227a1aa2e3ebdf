"""dataferry: move and synchronise research data between institutions."""

__version__ = "0.1.0"
