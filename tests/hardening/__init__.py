"""Reliability and security tests: load, faults and hostile input against the real receiver and worker."""
