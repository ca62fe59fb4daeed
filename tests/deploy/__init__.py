"""Tests of the deployment/ manifests, the Dockerfile and the RBAC rules against real usage."""
