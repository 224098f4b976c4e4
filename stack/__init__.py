"""The local embedded stack behind ``dinhdanh up``: PostgreSQL, SeaweedFS, the platform CA, the services."""
