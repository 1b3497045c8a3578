"""Capability services: plain classes (testable without Ray) that Serve hosts as deployments."""
