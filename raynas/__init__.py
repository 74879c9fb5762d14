"""raynas."""
