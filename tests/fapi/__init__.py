"""FAPI 2.0 Security Profile: pushed authorization requests, private_key_jwt, the profile's refusals (docs/fapi.md)."""
