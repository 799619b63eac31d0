"""Tests of controller policy."""
