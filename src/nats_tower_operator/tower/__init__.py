"""tower package."""
