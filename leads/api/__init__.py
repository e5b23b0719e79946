"""The HTTP API: the RG-compatible push API (push.py) and the read and act API (read.py)."""
