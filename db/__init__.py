"""The PostgreSQL schema (Alembic migrations, in one place) and the connection pool."""
