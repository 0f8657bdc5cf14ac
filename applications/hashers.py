"""A fast, salted hasher for consumer secrets (never for user passwords).

Consumer secrets are 128 random characters from the platform's generator: nobody can guess one,
so key stretching (PBKDF2's million iterations) buys nothing and would cost every token request
about a second of CPU. One salted SHA-256 keeps a stolen database from revealing the secrets.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare


class ConsumerSecretHasher(BasePasswordHasher):
    """``consumer_sha256$<salt>$<hex sha256(salt + secret)>``."""

    algorithm = "consumer_sha256"

    def encode(self, password: str, salt: str) -> str:
        self._check_encode_args(password, salt)
        digest = hashlib.sha256((salt + password).encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[str, str]:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        # Nothing to equalise: every secret is hashed with the same single round.
        return None
