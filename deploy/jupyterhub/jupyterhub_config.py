"""JupyterHub configuration of a class on one machine (deploy/jupyterhub/README.md).

Started by ``python -m autograder hub start --class CLASS.toml``, which sets ``COURSE_HUB_CLASS``
(the class file) and ``COURSE_HUB_PORT``. Students log in with their Unix account and password
(PAM); only the roster and the instructor may log in. Each user's JupyterLab runs as that user
(LocalProcessSpawner) in the course environment, the Python environment this hub runs in, with
nbgrader's Assignments tab; the instructor's has the formgrader too. Everything listens on
127.0.0.1 unless the class file says ``bind = "0.0.0.0"`` (behind a TLS proxy).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from autograder.hub import ClassConfig, singleuser_environment  # noqa: E402

c = get_config()  # noqa: F821 -- injected by traitlets when JupyterHub loads this file
course = ClassConfig.load(Path(os.environ["COURSE_HUB_CLASS"]))
port = int(os.environ.get("COURSE_HUB_PORT", course.port))
state = course.hub_state

c.JupyterHub.bind_url = f"http://{course.bind}:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 2}"
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
# Stopping the hub stops the proxy and every student's server with it.
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = set(course.students) | {course.instructor}
c.Authenticator.admin_users = {course.instructor}

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    key: (lambda spawner, key=key: singleuser_environment(course, spawner.user.name)[key])
    for key in singleuser_environment(course, course.instructor)
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
