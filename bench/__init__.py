"""Benchmarks of nearby and the WSGI apps they serve (see ``bench/suite.py``)."""
