"""Passwords: the NIST SP 800-63B policy and Argon2id hashing in a process pool."""
