"""Tests of the load-test and benchmark tooling (loadtests/)."""
