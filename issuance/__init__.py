"""Issuance: criminal-record certificates and the electronic health book, signed and verifiable offline (issue 11)."""
