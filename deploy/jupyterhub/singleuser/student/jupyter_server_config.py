"""A student's JupyterLab: the Assignments tab only, none of the instructor's nbgrader tools."""

c = get_config()  # noqa: F821 -- injected by traitlets when jupyter_server loads this file

c.ServerApp.jpserver_extensions = {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
}
