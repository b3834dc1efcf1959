"""The instructor's pipeline for graded homework: release notebooks with nbgrader, grade a class
in one command, and write feedback. Command line: ``python -m autograder`` (see README.md)."""
