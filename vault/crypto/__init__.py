"""Pure cryptography of the personal document vault: no I/O, no storage, no network.

- :mod:`vault.crypto.streaming`: streaming AEAD for document bodies (Tink's AES-GCM-HKDF Streaming AEAD,
  AES-256 / HKDF-SHA256), incremental in both directions with memory bounded by one segment.
- :mod:`vault.crypto.envelope`: the key hierarchy master key → citizen KEK → per-object data key, with AES-256-GCM
  key wrapping bound to owner, object and key versions, KEK and master-key rotation, and crypto-shredding.
- :mod:`vault.crypto.names`: a document version's title, filename and issuer name sealed under a key derived from
  its data key, so that they open, and are shredded, with the content.
"""
