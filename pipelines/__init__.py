"""Runnable jobs: each parses its options and chains aepipe's transforms into one pipeline."""
