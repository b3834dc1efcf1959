"""The grader's code that runs inside a grading kernel, mounted read-only into the sandbox next
to the framework: the lock on the reference implementations (:mod:`.lock`) and both ends of the
check protocol (:mod:`.protocol`). Imports only the standard library, NumPy and
:mod:`course.checks`."""
