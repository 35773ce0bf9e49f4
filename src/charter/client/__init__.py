"""The Python SDK for a remote charter server: `charter.open(url=..., token=...)`."""
