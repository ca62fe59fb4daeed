"""Tests of the deploy/ manifests, the Dockerfile and the RBAC rules against real usage."""
