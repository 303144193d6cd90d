"""Test support: the Bot API stand-in, the PTB harness and the crash runner. Used by the
tests and the benchmarks; never shipped in the wheel (tests/test_packaging.py checks)."""
