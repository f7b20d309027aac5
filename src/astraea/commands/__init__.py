"""CLI commands that live in their own modules; ``astraea.cli`` registers them."""
