"""Snowbird: a tiny sprint board served over WSGI, standard library only."""

__version__ = "1.4.0"
