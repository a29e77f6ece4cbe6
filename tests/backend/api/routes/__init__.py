"""Tests of the backend package (mirrors backend/)."""
