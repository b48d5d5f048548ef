"""Tests of the fields package."""
