"""nbgrader in the instructor's JupyterLab: the formgrader works on the hub's course directory."""

import os

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.root = os.environ["COURSE_DIR"]
