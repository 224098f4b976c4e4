"""An agency's side of the platform: its client library (``agency.client``), used by ``dinhdanh agency``."""
