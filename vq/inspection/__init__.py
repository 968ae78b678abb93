"""The inspection pipeline: localise -> gate -> segment -> mask policy."""
