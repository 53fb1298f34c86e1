"""Bind every feature file under features/ once; the steps come from steps/ via conftest."""
from pytest_bdd import scenarios

scenarios(".")
