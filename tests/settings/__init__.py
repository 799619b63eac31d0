"""Tests of controller settings."""
