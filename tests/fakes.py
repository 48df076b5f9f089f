"""Test doubles shared by the plugin and golden-store tests."""

from __future__ import annotations

from pytest_mmhash import UnhashableFeatureError, hash_feature


class FakeDriver:
    """Stands in for the real-SGLang oracle driver in tests, answering with the engine's values.

    Only tests use it: the project's golden/ values come from real SGLang alone.
    """

    def __init__(self, version: str = "0.5.23"):
        self.version = version

    def sglang_version(self) -> str:
        return self.version

    def real_item(self, feature, device):
        try:
            m = hash_feature(feature, sglang_version=self.version, device=device)
        except UnhashableFeatureError:
            return {"error": "TypeError: object supporting the buffer API required"}
        return {"hash": m.hash, "pad_values": list(m.pad_values)}
