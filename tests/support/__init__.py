"""Test helpers shared by every layer: real databases, real servers on loopback."""
