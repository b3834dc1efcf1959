"""nbgrader configuration of the course, shared by ``python -m autograder`` and nbgrader's own
commands (run them from a course directory that the pipeline staged, e.g. ``DIR/course``).

The gradebook is the SQLite file ``gradebook.db`` at the course root (nbgrader's default).
Solution regions are marked ``### BEGIN SOLUTION`` / ``### END SOLUTION``, hidden tests
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` (nbgrader's defaults, spelled out here).
"""

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "training-neural-networks"
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
c.ClearHiddenTests.enforce_metadata = True
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.OverwriteCells.add_missing_cells = True
