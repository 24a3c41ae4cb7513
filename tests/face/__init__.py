"""Tests for mer.face."""
