"""Tests of controller storage."""
