"""The Feast side: feature views built from the catalog, and a FeatureStore opened from the
settings."""
