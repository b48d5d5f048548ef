"""Flax neural fields."""
