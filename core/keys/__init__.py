"""Key material of the platform's processes, one key per purpose, behind one small interface.

- ``provider.KeyProvider``: ``key(purpose) -> bytes``; a purpose the process was not given is
  ``KeyUnavailable``, so a process holds, and can reach, only the keys of its own work.
- ``files.FileKeyProvider``: one file per purpose in the folder a process is given
  (``DINHDANH_KEYS_DIR``; a mounted Secret in Kubernetes). ``memory.KeyMap``: keys held in memory.
- ``purposes``: the purposes and their sizes; ``legacy``: the one-time split of the old single master key.
- ``sealing.Sealer``: AES-256-GCM under one purpose's key.
- ``signing.Signer``: a signing key behind ``sign(message)``, ``KeyProvider.signer(purpose)``; ``pkcs11``: in a token.
"""
