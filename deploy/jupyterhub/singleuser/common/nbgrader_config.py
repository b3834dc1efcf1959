"""nbgrader in every JupyterLab of the hub: the course and its exchange (the Assignments tab).

The hub's spawner sets the variables (autograder/hub.py, ``singleuser_environment``).
"""

import os

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = os.environ["COURSE_ID"]
c.Exchange.root = os.environ["NBGRADER_EXCHANGE"]
c.Exchange.path_includes_course = False
