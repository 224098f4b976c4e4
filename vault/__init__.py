"""The personal document vault (encrypted documents in S3, metadata in PostgreSQL): the vault issue."""
